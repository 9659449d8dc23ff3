package qupath.ext.hubseg;

import com.google.gson.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import qupath.ext.hubseg.core.ApiException;
import qupath.ext.hubseg.core.DetectionRequest;
import qupath.ext.hubseg.core.DetectionResult;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.JobListener;
import qupath.ext.hubseg.core.JobPoller;
import qupath.ext.hubseg.core.JobStatus;
import qupath.ext.hubseg.core.ModelInfo;
import qupath.ext.hubseg.core.UploadDetectionRequest;
import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServer;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.objects.hierarchy.PathObjectHierarchy;
import qupath.lib.regions.ImagePlane;
import qupath.lib.regions.RegionRequest;
import qupath.lib.roi.ROIs;
import qupath.lib.roi.interfaces.ROI;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Runs detection for one image, without any UI, so the menu command and scripts share it.
 * {@link #run} talks to the server (call it off the JavaFX thread); {@link #apply} changes the hierarchy.
 */
public final class Detector {

    /** Largest region sent as pixels (model-scale pixels); larger ones must be split by the user. */
    static final long MAX_UPLOAD_PIXELS = 64L * 1024 * 1024;
    /** Name of the annotation recording a whole-image detection. */
    static final String WHOLE_IMAGE_NAME = "hubseg region";
    /** Region metadata: upload id of the pixels the server detected on (images it cannot read itself). */
    static final String META_UPLOAD = "hubseg.upload";
    private static final Logger logger = LoggerFactory.getLogger(Detector.class);
    private static final Set<String> FALL_BACK_TO_UPLOAD = Set.of("forbidden_path", "unsupported_format", "not_found",
            "missing_pixel_size", "dependency_missing");

    /** The detections of one region and the earlier proposals they replace. */
    public record RegionResult(PathObject region, List<PathObject> added, List<PathObject> replaced, String modelName,
                               String uploadId) {
    }

    private final HubsegClient client;
    private final HubsegSettings settings;

    public Detector(HubsegClient client, HubsegSettings settings) {
        this.client = client;
        this.settings = settings.validate();
    }

    /**
     * Detects inside each region annotation, or in the whole image when {@code regions} is empty (a locked
     * "hubseg region" annotation is then created to record where labels are exhaustive).
     *
     * @param listener job progress (may be null)
     * @param cancel   polled between status requests; when true the job is cancelled on the server
     * @param step     short text for each step (may be null)
     */
    public List<RegionResult> run(ImageData<BufferedImage> imageData, List<PathObject> regions, JobListener listener,
                                  BooleanSupplier cancel, Consumer<String> step) {
        ImageServer<BufferedImage> server = imageData.getServer();
        List<PathObject> targets = new ArrayList<>(regions);
        if (targets.isEmpty()) {
            PathObject whole = imageData.getHierarchy().getAnnotationObjects().stream()
                    .filter(p -> WHOLE_IMAGE_NAME.equals(p.getName())
                            && QuPathObjects.metadata(p).containsKey(HubsegObjects.META_REGION))
                    .findFirst().orElse(null);
            if (whole != null) {
                targets.add(whole);
            }
        }
        if (targets.isEmpty()) {
            // ROIs.createRectangleROI(double, double, double, double, ImagePlane): QuPath 0.6/0.7
            PathObject whole = PathObjects.createAnnotationObject(
                    ROIs.createRectangleROI(0, 0, server.getWidth(), server.getHeight(), ImagePlane.getDefaultPlane()));
            whole.setName(WHOLE_IMAGE_NAME);
            whole.setLocked(true);
            targets.add(whole);
        }
        List<RegionResult> results = new ArrayList<>();
        for (int i = 0; i < targets.size(); i++) {
            if (cancel != null && cancel.getAsBoolean()) {
                break;
            }
            PathObject region = targets.get(i);
            String prefix = targets.size() > 1 ? "Region " + (i + 1) + " of " + targets.size() + ": " : "";
            boolean wholeImage = WHOLE_IMAGE_NAME.equals(region.getName()) && regions.isEmpty();
            results.add(runRegion(imageData, region, wholeImage, listener, cancel,
                    text -> { if (step != null) step.accept(prefix + text); }));
        }
        return results;
    }

    private RegionResult runRegion(ImageData<BufferedImage> imageData, PathObject region, boolean wholeImage,
                                   JobListener listener, BooleanSupplier cancel, Consumer<String> step) {
        ImageServer<BufferedImage> server = imageData.getServer();
        double pixelSize = pixelSizeMicrons(server);
        JsonObject geometry = wholeImage ? null : QuPathObjects.geometry(region.getROI());
        JobStatus job = null;
        String localPath = settings.alwaysUpload() ? null : localFile(server);
        if (localPath != null) {
            step.accept("sending the image path to the server");
            try {
                job = client.submitDetection(new DetectionRequest(localPath, null, geometry, pixelSize,
                        settings.modelOrNull(), settings.detectionOptions()));
            } catch (ApiException e) {
                if (!FALL_BACK_TO_UPLOAD.contains(e.code())) {
                    throw e;
                }
                logger.info("hubseg: the server cannot read {} ({}); uploading pixels instead", localPath, e.getMessage());
            }
        }
        if (job == null) {
            step.accept("reading and uploading the region");
            job = client.submitDetection(uploadRequest(server, region.getROI(), pixelSize, geometry));
        }
        step.accept("detecting");
        JobStatus done = JobPoller.requireSucceeded(client.await(job.id(), listener, cancel, Duration.ofMillis(500)));
        DetectionResult result = client.result(done.id());
        List<PathObject> added = QuPathObjects.fromFeatures(result.features());
        List<PathObject> replaced = replaceable(imageData.getHierarchy(), region.getROI(), wholeImage);
        return new RegionResult(region, added, replaced, result.modelName(), job.uploadId());
    }

    /**
     * Adds the new objects, removes the proposals they replace (never reviewed, edited or user-drawn objects)
     * and marks each region as detected. Call on the JavaFX thread when a viewer shows the image.
     */
    public static int apply(ImageData<BufferedImage> imageData, List<RegionResult> results) {
        // PathObjectHierarchy.removeObjects(Collection, boolean keepChildren) / addObject / addObjects (QuPath 0.4+)
        PathObjectHierarchy hierarchy = imageData.getHierarchy();
        int count = 0;
        for (RegionResult r : results) {
            hierarchy.removeObjects(r.replaced(), true);
            r.region().getMetadata().put(HubsegObjects.META_REGION, r.modelName());
            if (r.uploadId() != null) {
                r.region().getMetadata().put(META_UPLOAD, r.uploadId());
            }
            if (r.region().getParent() == null) {
                hierarchy.addObject(r.region());
            }
            hierarchy.addObjects(r.added());
            count += r.added().size();
        }
        hierarchy.fireHierarchyChangedEvent(Detector.class);
        return count;
    }

    /** Earlier pending, unedited hubseg objects whose centroid lies in the region. */
    static List<PathObject> replaceable(PathObjectHierarchy hierarchy, ROI regionRoi, boolean wholeImage) {
        List<PathObject> candidates = new ArrayList<>(hierarchy.getAnnotationObjects());
        candidates.addAll(hierarchy.getDetectionObjects());
        List<PathObject> replace = new ArrayList<>();
        for (PathObject p : candidates) {
            ROI roi = p.getROI();
            if (roi == null || !QuPathObjects.isReplaceable(p)) {
                continue;
            }
            if (wholeImage || regionRoi.contains(roi.getCentroidX(), roi.getCentroidY())) {
                replace.add(p);
            }
        }
        return replace;
    }

    /** Annotations the user selected that can be detection regions (area ROIs, not hubseg proposals). */
    public static List<PathObject> selectedRegions(ImageData<BufferedImage> imageData) {
        // qupath.lib.objects.hierarchy.events.PathObjectSelectionModel.getSelectedObjects()
        Collection<PathObject> selected = imageData.getHierarchy().getSelectionModel().getSelectedObjects();
        List<PathObject> regions = new ArrayList<>();
        for (PathObject p : selected) {
            if (p.isAnnotation() && p.getROI() != null && p.getROI().isArea() && !QuPathObjects.isHubsegObject(p)) {
                regions.add(p);
            }
        }
        return regions;
    }

    /** Level-0 pixel size in µm, or a readable error telling the user how to set it. */
    static double pixelSizeMicrons(ImageServer<BufferedImage> server) {
        var calibration = server.getPixelCalibration(); // qupath.lib.images.servers.PixelCalibration
        if (!calibration.hasPixelSizeMicrons()) {
            throw new HubsegException("The image has no pixel size in µm. Set it in the Image tab (double-click "
                    + "'Pixel width'), then run detection again.");
        }
        return calibration.getAveragedPixelSizeMicrons();
    }

    /** The image's file when it is a single local file (the server may be able to read it directly). */
    static String localFile(ImageServer<BufferedImage> server) {
        return localFile(server.getURIs()); // ImageServer.getURIs() (qupath.lib.io.UriResource)
    }

    /** The single local file among an image's URIs (a server's or a project entry's), or null. */
    static String localFile(Collection<URI> uris) {
        if (uris.size() != 1) {
            return null;
        }
        URI uri = uris.iterator().next();
        if (!"file".equals(uri.getScheme())) {
            return null;
        }
        Path path = Path.of(uri);
        return Files.isRegularFile(path) ? path.toAbsolutePath().toString() : null;
    }

    private UploadDetectionRequest uploadRequest(ImageServer<BufferedImage> server, ROI roi, double pixelSize,
                                                 JsonObject geometry) {
        ModelInfo model = client.model(settings.modelOrNull() != null ? settings.modelOrNull() : client.health().activeModel());
        double downsample = Double.isFinite(model.pixelSizeUm()) ? Math.max(1.0, model.pixelSizeUm() / pixelSize) : 1.0;
        int x = (int) Math.max(0, Math.floor(roi.getBoundsX()));
        int y = (int) Math.max(0, Math.floor(roi.getBoundsY()));
        int w = (int) Math.min(server.getWidth() - x, Math.ceil(roi.getBoundsX() + roi.getBoundsWidth()) - x);
        int h = (int) Math.min(server.getHeight() - y, Math.ceil(roi.getBoundsY() + roi.getBoundsHeight()) - y);
        long pixels = (long) Math.ceil(w / downsample) * (long) Math.ceil(h / downsample);
        if (pixels > MAX_UPLOAD_PIXELS) {
            throw new HubsegException("The region is too large to upload (" + pixels / 1_000_000 + " megapixels at the "
                    + "model's resolution). Draw smaller annotations, or let the server read the file itself "
                    + "(start it with --slides-root pointing at the image's folder).");
        }
        try {
            // RegionRequest.createInstance(String, double, int, int, int, int) and ImageServer.readRegion(RegionRequest)
            BufferedImage image = server.readRegion(RegionRequest.createInstance(server.getPath(), downsample, x, y, w, h));
            return new UploadDetectionRequest(toPng(image), "region.png", x, y, downsample, pixelSize, null, geometry,
                    settings.modelOrNull(), settings.detectionOptions());
        } catch (IOException e) {
            throw new HubsegException("Could not read the region from the image: " + e.getMessage(), e);
        }
    }

    static byte[] toPng(BufferedImage image) throws IOException {
        BufferedImage rgb = image;
        if (image.getType() != BufferedImage.TYPE_INT_RGB) {
            rgb = new BufferedImage(image.getWidth(), image.getHeight(), BufferedImage.TYPE_INT_RGB);
            var g = rgb.createGraphics();
            g.drawImage(image, 0, 0, null);
            g.dispose();
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(rgb, "png", out);
        return out.toByteArray();
    }
}
