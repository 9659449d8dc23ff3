package qupath.ext.hubseg;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import qupath.ext.hubseg.core.ApiException;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.JobStatus;
import qupath.ext.hubseg.core.TrainingRequest;
import qupath.ext.hubseg.core.UnlabelledImage;
import qupath.lib.images.servers.ImageServer;
import qupath.lib.projects.Project;
import qupath.lib.projects.ProjectImageEntry;
import qupath.lib.regions.RegionRequest;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * "Also learn from the unreviewed images of this project": which images those are, and how the server gets each
 * one: its path when it is a single local file (and the settings do not say "always upload"), else the pixels
 * QuPath reads through the image's {@link ImageServer} at about the model's resolution, uploaded with
 * {@code POST /v1/uploads}. No UI, so the Train command, scripts and tests share it.
 */
public final class UnreviewedImages {

    /** Errors about {@code unlabelled[i].path} after which that image is uploaded instead (as Detector does). */
    static final Set<String> FALL_BACK_TO_UPLOAD = Set.of("forbidden_path", "not_found", "unsupported_format");
    private static final Pattern PATH_FIELD = Pattern.compile("unlabelled\\[(\\d+)]\\.path");
    private static final Logger logger = LoggerFactory.getLogger(UnreviewedImages.class);

    /** An image of the project nobody reviewed; {@code localPath} is its single local file, or null (upload only). */
    public record Candidate(ProjectImageEntry<BufferedImage> entry, String name, String localPath) {
    }

    /**
     * The started job, the request exactly as sent (paths and upload ids in {@code unlabelledImages}) and the
     * names of images left out (no pixel size, or QuPath cannot open them).
     */
    public record Started(JobStatus job, TrainingRequest sent, List<String> skipped) {
    }

    private UnreviewedImages() {
    }

    /** The project's images that have no exported label set yet, local files or not. */
    public static List<Candidate> find(Project<BufferedImage> project) throws IOException {
        List<Candidate> candidates = new ArrayList<>();
        for (ProjectImageEntry<BufferedImage> entry : LabelExporter.unreviewedEntries(project)) {
            // ProjectImageEntry.getURIs() (qupath.lib.io.UriResource): the files behind the entry, without opening it
            candidates.add(new Candidate(entry, entry.getImageName(), Detector.localFile(entry.getURIs())));
        }
        return candidates;
    }

    /** The local files among {@link #find}: where the server may read the unreviewed images by path. */
    public static List<String> localPaths(Project<BufferedImage> project) throws IOException {
        List<String> paths = new ArrayList<>();
        for (Candidate candidate : find(project)) {
            if (candidate.localPath() != null) {
                paths.add(candidate.localPath());
            }
        }
        return paths;
    }

    /** Every image of the project, reviewed or not (what "Adapt to this project" offers). */
    public static List<Candidate> all(Project<BufferedImage> project) throws IOException {
        List<Candidate> candidates = new ArrayList<>();
        for (ProjectImageEntry<BufferedImage> entry : project.getImageList()) {
            candidates.add(new Candidate(entry, entry.getImageName(), Detector.localFile(entry.getURIs())));
        }
        return candidates;
    }

    /**
     * Starts {@code request} (its own unlabelled images are replaced) self-training on {@code candidates}: paths
     * where the server may read them, uploads otherwise. When the server refuses a path ({@link #FALL_BACK_TO_UPLOAD}
     * naming {@code unlabelled[i].path}), that image is uploaded and the request sent again.
     *
     * @param step short progress texts (may be null)
     */
    public static Started startTraining(HubsegClient client, HubsegSettings settings, TrainingRequest request,
                                        List<Candidate> candidates, Consumer<String> step) {
        return startTraining(client, settings, request, candidates, step, null);
    }

    /**
     * As {@link #startTraining(HubsegClient, HubsegSettings, TrainingRequest, List, Consumer)}; {@code cancel} is
     * polled between images: when it turns true, the uploads made so far are deleted and a {@link HubsegException}
     * says that nothing was started.
     */
    public static Started startTraining(HubsegClient client, HubsegSettings settings, TrainingRequest request,
                                        List<Candidate> candidates, Consumer<String> step, BooleanSupplier cancel) {
        Consumer<String> say = step != null ? step : text -> { };
        double modelPixelSize = modelPixelSize(client, request.baseModel());
        List<UnlabelledImage> images = new ArrayList<>();
        List<Candidate> sent = new ArrayList<>(); // sent.get(i) is unlabelled[i]
        List<String> skipped = new ArrayList<>();
        try {
            collect(client, settings, candidates, modelPixelSize, say, cancel, images, sent, skipped);
            return send(client, request, images, sent, skipped, modelPixelSize, say);
        } catch (HubsegException e) {
            // nothing will read the pixels uploaded for this request: remove them (best effort)
            for (UnlabelledImage image : images) {
                if (image.uploadId() != null) {
                    try {
                        client.deleteUpload(image.uploadId());
                    } catch (HubsegException ignored) {
                        logger.debug("hubseg: could not delete upload {}", image.uploadId());
                    }
                }
            }
            throw e;
        }
    }

    /** Fills {@code images} (path or upload per candidate) and {@code sent} (the candidate of each). */
    private static void collect(HubsegClient client, HubsegSettings settings, List<Candidate> candidates,
                                double modelPixelSize, Consumer<String> say, BooleanSupplier cancel,
                                List<UnlabelledImage> images, List<Candidate> sent, List<String> skipped) {
        for (int i = 0; i < candidates.size(); i++) {
            if (cancel != null && cancel.getAsBoolean()) {
                throw new HubsegException("Cancelled while preparing the unreviewed images; no training was started.");
            }
            Candidate candidate = candidates.get(i);
            String prefix = "Image " + (i + 1) + " of " + candidates.size() + " (" + candidate.name() + "): ";
            UnlabelledImage image;
            try {
                image = withServer(candidate, server -> {
                    Double pixelSize = pixelSizeOrNull(server);
                    if (!settings.alwaysUpload() && candidate.localPath() != null) {
                        say.accept(prefix + "sending its path");
                        return UnlabelledImage.ofPath(candidate.localPath(), pixelSize);
                    }
                    if (pixelSize == null) {
                        return null;
                    }
                    say.accept(prefix + "reading and uploading it");
                    return UnlabelledImage.ofUpload(upload(client, server, pixelSize, modelPixelSize));
                });
            } catch (HubsegException e) {
                throw e;
            } catch (Exception e) {
                logger.warn("hubseg: cannot open {} ({}); left out of self-training", candidate.name(), e.getMessage());
                skipped.add(candidate.name() + " (cannot be opened: " + e.getMessage() + ")");
                continue;
            }
            if (image == null) {
                logger.warn("hubseg: {} has no pixel size in µm; left out of self-training", candidate.name());
                skipped.add(candidate.name() + " (no pixel size)");
                continue;
            }
            images.add(image);
            sent.add(candidate);
        }
    }

    private static Started send(HubsegClient client, TrainingRequest request, List<UnlabelledImage> images,
                                List<Candidate> sent, List<String> skipped, double modelPixelSize,
                                Consumer<String> say) {
        while (true) {
            TrainingRequest attempt = request.withUnlabelled(images);
            try {
                say.accept("starting the training");
                return new Started(client.startTraining(attempt), attempt, List.copyOf(skipped));
            } catch (ApiException e) {
                int index = refusedPath(e);
                if (index < 0 || index >= images.size() || images.get(index).uploadId() != null) {
                    throw e;
                }
                Candidate candidate = sent.get(index);
                logger.info("hubseg: the server cannot read {} ({}); uploading its pixels instead",
                        candidate.localPath(), e.getMessage());
                say.accept("The server cannot read " + candidate.name() + ": reading and uploading it");
                try {
                    images.set(index, withServer(candidate, server -> {
                        Double pixelSize = pixelSizeOrNull(server);
                        if (pixelSize == null) {
                            throw new HubsegException("The server cannot read " + candidate.localPath() + " and QuPath "
                                    + "knows no pixel size for it: set it in the Image tab, or untick the unreviewed images.");
                        }
                        return UnlabelledImage.ofUpload(upload(client, server, pixelSize, modelPixelSize));
                    }));
                } catch (HubsegException inner) {
                    throw inner;
                } catch (Exception inner) {
                    throw new HubsegException("Could not read " + candidate.name() + ": " + inner.getMessage(), inner);
                }
            }
        }
    }

    /** {@code i} when the server refused {@code unlabelled[i].path} in a way an upload fixes, else -1. */
    static int refusedPath(ApiException e) {
        if (!FALL_BACK_TO_UPLOAD.contains(e.code()) || e.field() == null) {
            return -1;
        }
        Matcher m = PATH_FIELD.matcher(e.field());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /**
     * Reads the whole image at {@link #uploadDownsample} through QuPath's image server, encodes it as PNG and
     * uploads it; returns the upload id.
     */
    static String upload(HubsegClient client, ImageServer<BufferedImage> server, double pixelSize, double modelPixelSize) {
        int width = server.getWidth();
        int height = server.getHeight();
        double downsample = uploadDownsample(width, height, pixelSize, modelPixelSize);
        try {
            // RegionRequest.createInstance(String, double, int, int, int, int) and ImageServer.readRegion(RegionRequest)
            BufferedImage image = server.readRegion(RegionRequest.createInstance(server.getPath(), downsample, 0, 0,
                    width, height));
            return client.upload(Detector.toPng(image), "image.png", pixelSize, downsample);
        } catch (IOException e) {
            throw new HubsegException("Could not read the image " + server.getMetadata().getName() + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * Level-0 pixels per uploaded pixel: about the model's pixel size (never finer than the image), raised when the
     * image would otherwise exceed {@link Detector#MAX_UPLOAD_PIXELS} (logged: the model then sees coarser pixels).
     */
    static double uploadDownsample(int width, int height, double pixelSize, double modelPixelSize) {
        double wanted = Double.isFinite(modelPixelSize) && modelPixelSize > 0 ? Math.max(1.0, modelPixelSize / pixelSize)
                : 1.0;
        double downsample = Math.max(wanted, Math.sqrt((double) width * height / Detector.MAX_UPLOAD_PIXELS));
        while (uploadPixels(width, height, downsample) > Detector.MAX_UPLOAD_PIXELS) {
            downsample *= 1.001;
        }
        if (downsample > wanted) {
            logger.info("hubseg: a {}×{} image is over {} MP at the model's resolution; uploading it at downsample "
                    + "{} ({} µm/px) instead of {}", width, height, Detector.MAX_UPLOAD_PIXELS / 1_000_000,
                    String.format("%.3f", downsample), String.format("%.3f", downsample * pixelSize),
                    String.format("%.3f", wanted));
        }
        return downsample;
    }

    static long uploadPixels(int width, int height, double downsample) {
        return (long) Math.ceil(width / downsample) * (long) Math.ceil(height / downsample);
    }

    private static double modelPixelSize(HubsegClient client, String baseModel) {
        String name = baseModel != null && !baseModel.isBlank() ? baseModel : client.health().activeModel();
        return name == null ? Double.NaN : client.model(name).pixelSizeUm();
    }

    /** Something done with an image's server. */
    private interface ServerTask<T> {
        T apply(ImageServer<BufferedImage> server) throws Exception;
    }

    /** Opens the candidate as the project does (with metadata set in QuPath), runs {@code task}, closes it. */
    private static <T> T withServer(Candidate candidate, ServerTask<T> task) throws Exception {
        // ProjectImageEntry.getServerBuilder().build() (ImageServerBuilder.ServerBuilder)
        ImageServer<BufferedImage> server = candidate.entry().getServerBuilder().build();
        try {
            return task.apply(server);
        } finally {
            server.close();
        }
    }

    private static Double pixelSizeOrNull(ImageServer<BufferedImage> server) {
        var calibration = server.getPixelCalibration(); // qupath.lib.images.servers.PixelCalibration
        return calibration.hasPixelSizeMicrons() ? calibration.getAveragedPixelSizeMicrons() : null;
    }
}
