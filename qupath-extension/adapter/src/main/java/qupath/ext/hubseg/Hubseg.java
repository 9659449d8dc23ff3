package qupath.ext.hubseg;

import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
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
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

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
    private static volatile Supplier<Collection<ImageData<BufferedImage>>> openImages = List::of;

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
            if (QuPathObjects.metadata(p).containsKey(HubsegObjects.META_REGION)
                    && !Detector.WHOLE_IMAGE_NAME.equals(p.getName())) {
                regions.add(p);
            }
        }
        return detect(imageData, regions);
    }

    /**
     * Runs {@link #detect(ImageData)} on every image of a project and saves each one. An image open in a QuPath
     * viewer is detected in the viewer's own {@code ImageData} (then saved), so the viewer shows the new objects
     * and saving it later cannot overwrite them with an older copy. Returns objects added per image name; an
     * image that fails is logged and counted as -1.
     */
    public static Map<String, Integer> detectProject(Project<BufferedImage> project) {
        return detectProject(project, openImages.get());
    }

    /** {@link #detectProject(Project)} with the images that are open (their entries use these, not a copy). */
    public static Map<String, Integer> detectProject(Project<BufferedImage> project,
                                                     Collection<ImageData<BufferedImage>> open) {
        if (project == null) {
            throw new HubsegException("Open a QuPath project first (File > Open project).");
        }
        Map<ProjectImageEntry<BufferedImage>, ImageData<BufferedImage>> openByEntry = new HashMap<>();
        for (ImageData<BufferedImage> imageData : open) {
            ProjectImageEntry<BufferedImage> entry = project.getEntry(imageData); // null: not in this project
            if (entry != null) {
                openByEntry.put(entry, imageData);
            }
        }
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (ProjectImageEntry<BufferedImage> entry : project.getImageList()) {
            try {
                int n;
                ImageData<BufferedImage> opened = openByEntry.get(entry);
                if (opened != null) {
                    n = detect(opened);
                    entry.saveImageData(opened);
                } else {
                    // ProjectImageEntry.readImageData() opens an image server: ImageData.close() closes it again
                    ImageData<BufferedImage> imageData = entry.readImageData();
                    try {
                        n = detect(imageData);
                        entry.saveImageData(imageData);
                    } finally {
                        close(imageData, entry.getImageName());
                    }
                }
                counts.put(entry.getImageName(), n);
                logger.info("hubseg: {} objects in {}", n, entry.getImageName());
            } catch (IOException | RuntimeException e) {
                logger.error("hubseg: {} skipped: {}", entry.getImageName(), Failures.message(e));
                counts.put(entry.getImageName(), -1);
            }
        }
        return counts;
    }

    private static void close(ImageData<BufferedImage> imageData, String name) {
        try {
            imageData.close(); // closes its ImageServer (declared "throws Exception")
        } catch (Exception e) {
            logger.warn("hubseg: could not close the image server of {}: {}", name, e.toString());
        }
    }

    /** Set by {@link HubsegExtension}: the images open in QuPath's viewers (none when QuPath runs headless). */
    static void setOpenImages(Supplier<Collection<ImageData<BufferedImage>>> supplier) {
        openImages = supplier;
    }

    /**
     * Exports the reviewed regions of an image as label sets: writes them under the project's hubseg/labels folder
     * and posts them to the server. Returns the server ids.
     */
    public static List<String> exportLabels(Project<BufferedImage> project, ImageData<BufferedImage> imageData,
                                            String imageName, boolean includePending) throws IOException {
        LabelExporter.labelsFolder(project); // no project: one readable error before any work
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
