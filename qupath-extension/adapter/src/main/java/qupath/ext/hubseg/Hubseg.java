package qupath.ext.hubseg;

import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.projects.Project;
import qupath.lib.projects.ProjectImageEntry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Public API for scripts (see scripts/qupath/*.groovy). Uses the settings from Extensions > hubseg > Settings
 * unless given others. Every method blocks while the server works: run it from the script editor, not the UI thread.
 * <pre>
 * import qupath.ext.hubseg.Hubseg
 * println Hubseg.status()
 * Hubseg.detectProject(getProject())
 * </pre>
 */
public final class Hubseg {

    private static final Logger logger = LoggerFactory.getLogger(Hubseg.class);

    private Hubseg() {
    }

    /** The saved settings. */
    public static HubsegSettings settings() {
        return HubsegPreferences.get();
    }

    /** A client for the saved server URL and token. */
    public static HubsegClient client() {
        return HubsegClient.fromSettings(settings());
    }

    /** The server's health, version and models as text (throws a readable error if it is not running). */
    public static String status() {
        return client().diagnostics();
    }

    /**
     * Detects glomeruli in the given annotations of an image (or the whole image when {@code regions} is empty),
     * replacing earlier unreviewed hubseg objects there. Returns the number of objects added.
     */
    public static int detect(ImageData<BufferedImage> imageData, List<PathObject> regions) {
        HubsegSettings settings = settings();
        Detector detector = new Detector(HubsegClient.fromSettings(settings), settings);
        List<Detector.RegionResult> results = detector.run(imageData, regions, null, null,
                text -> logger.info("hubseg: {}", text));
        return Detector.apply(imageData, results);
    }

    /** Detects in every region annotation detection ran in before, or the whole image if there is none. */
    public static int detect(ImageData<BufferedImage> imageData) {
        List<PathObject> regions = new ArrayList<>();
        for (PathObject p : imageData.getHierarchy().getAnnotationObjects()) {
            if (p.getMetadata().containsKey(HubsegObjects.META_REGION)
                    && !Detector.WHOLE_IMAGE_NAME.equals(p.getName())) {
                regions.add(p);
            }
        }
        return detect(imageData, regions);
    }

    /**
     * Runs {@link #detect(ImageData)} on every image of a project and saves each one.
     * Returns objects added per image name; an image that fails is logged and skipped.
     */
    public static Map<String, Integer> detectProject(Project<BufferedImage> project) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (ProjectImageEntry<BufferedImage> entry : project.getImageList()) {
            try {
                // ProjectImageEntry.readImageData() / saveImageData(ImageData)
                ImageData<BufferedImage> imageData = entry.readImageData();
                int n = detect(imageData);
                entry.saveImageData(imageData);
                counts.put(entry.getImageName(), n);
                logger.info("hubseg: {} objects in {}", n, entry.getImageName());
            } catch (IOException | RuntimeException e) {
                logger.error("hubseg: {} skipped: {}", entry.getImageName(), e.getMessage());
                counts.put(entry.getImageName(), -1);
            }
        }
        return counts;
    }

    /**
     * Exports the reviewed regions of an image as label sets: writes them under the project's hubseg/labels folder
     * and posts them to the server. Returns the server ids.
     */
    public static List<String> exportLabels(Project<BufferedImage> project, ImageData<BufferedImage> imageData,
                                            String imageName, boolean includePending) throws IOException {
        List<String> ids = new ArrayList<>();
        HubsegClient client = client();
        for (LabelExporter.Prepared prepared : LabelExporter.prepare(imageData, LabelExporter.regions(imageData),
                includePending)) {
            LabelExporter.write(project, imageName, prepared.labelSet());
            ids.add(LabelExporter.post(client, project, prepared.labelSet()));
        }
        return ids;
    }
}
