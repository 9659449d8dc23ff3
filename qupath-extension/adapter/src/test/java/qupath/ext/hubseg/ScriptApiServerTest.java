package qupath.ext.hubseg;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.LabelSetBuilder;
import qupath.ext.hubseg.core.RejectBehaviour;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;
import qupath.ext.hubseg.core.TestServer;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.projects.Project;
import qupath.lib.projects.ProjectImageEntry;
import qupath.lib.projects.Projects;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.ROIs;

import java.awt.image.BufferedImage;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The script API ({@code Hubseg.detect / detectProject / exportLabels}) end to end: images opened by QuPath's real
 * ImageJ server from TIFFs ImageJ wrote, real QuPath projects, and the repository's real {@code hubseg serve}
 * (threshold test model) on 127.0.0.1. Settings go through QuPath's real persistent preferences (PathPrefs).
 */
class ScriptApiServerTest {

    private static final String MODEL = "threshold-test-v1";
    private static TestServer server;
    private static Path slides;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        server = TestServer.shared();
        slides = Files.createDirectories(server.slidesDir.resolve("qupath-adapter"));
        HubsegPreferences.set(settings(false));
    }

    @AfterAll
    static void resetPreferences() {
        HubsegPreferences.set(HubsegSettings.defaults());
    }

    private static HubsegSettings settings(boolean alwaysUpload) {
        return new HubsegSettings(server.url.toString(), "", "", "none", null, "annotation",
                RejectBehaviour.KEEP_AS_REJECTED, alwaysUpload, false);
    }

    private static List<PathObject> hubsegObjects(ImageData<BufferedImage> imageData) {
        List<PathObject> all = new ArrayList<>(imageData.getHierarchy().getAnnotationObjects());
        all.addAll(imageData.getHierarchy().getDetectionObjects());
        return all.stream().filter(QuPathObjects::isHubsegObject).toList();
    }

    private static PathObject wholeImageRegion(ImageData<BufferedImage> imageData) {
        return imageData.getHierarchy().getAnnotationObjects().stream()
                .filter(p -> Detector.WHOLE_IMAGE_NAME.equals(p.getName())).findFirst().orElseThrow();
    }

    /** Every disk of the slide is found, each by exactly one object. */
    private static void assertFindsTheDisks(List<PathObject> objects) {
        assertEquals(TestImages.DISKS.length, objects.size(), "objects: " + objects);
        for (int[] d : TestImages.DISKS) {
            long hits = objects.stream().filter(p -> p.getROI().contains(d[0], d[1])).count();
            assertEquals(1, hits, "disk at " + d[0] + "," + d[1]);
        }
        for (PathObject p : objects) {
            assertTrue(p.isAnnotation());
            assertEquals(MODEL, p.getMetadata().get(HubsegObjects.META_MODEL));
            assertEquals("pending", p.getMetadata().get(HubsegObjects.META_REVIEW));
            assertTrue(p.getMeasurements().containsKey(HubsegObjects.MEASUREMENT_ENERGY));
            assertTrue(p.getPathClass().toString().startsWith(HubsegObjects.CLASS_POSITIVE));
        }
    }

    @Test
    void detectOnTheImageJServerThroughTheServerReadingTheFile() throws Exception {
        ImageData<BufferedImage> imageData = TestImages.imageData(TestImages.writeSlide(slides.resolve("read.tif"), 1.0));
        assertEquals(1.0, imageData.getServer().getPixelCalibration().getAveragedPixelSizeMicrons(), 1e-9,
                "QuPath's ImageJ server reads the TIFF's resolution");
        int n = Hubseg.detect(imageData);
        assertEquals(3, n);
        List<PathObject> first = hubsegObjects(imageData);
        assertFindsTheDisks(first);
        PathObject region = wholeImageRegion(imageData);
        assertEquals(MODEL, region.getMetadata().get(HubsegObjects.META_REGION));
        assertNull(region.getMetadata().get(Detector.META_UPLOAD), "the server read the file itself");

        // review one, run again: the reviewed one stays, the others are replaced, nothing is doubled
        PathObject reviewed = first.get(0);
        QuPathObjects.applyReview(reviewed, ReviewState.ACCEPTED);
        assertEquals(3, Hubseg.detect(imageData));
        List<PathObject> second = hubsegObjects(imageData);
        assertEquals(4, second.size());
        assertTrue(second.contains(reviewed));
        assertEquals(1, second.stream().filter(first::contains).count());
        assertEquals(1, imageData.getHierarchy().getAnnotationObjects().stream()
                .filter(p -> Detector.WHOLE_IMAGE_NAME.equals(p.getName())).count());
        imageData.close();
    }

    @Test
    void aFileTheServerMayNotReadIsUploadedAsPixelsReadByQuPath() throws Exception {
        // outside the server's --slides-root: the server refuses the path, the extension uploads the pixels it
        // reads through QuPath's ImageJ server (ImageServer.readRegion)
        ImageData<BufferedImage> imageData = TestImages.imageData(TestImages.writeSlide(tmp.resolve("private.tif"), 1.0));
        PathObject area = PathObjects.createAnnotationObject(
                ROIs.createRectangleROI(40, 40, 300, 300, ImagePlane.getDefaultPlane()));
        imageData.getHierarchy().addObject(area);
        int n = Hubseg.detect(imageData, List.of(area));
        assertEquals(3, n);
        assertFindsTheDisks(hubsegObjects(imageData));
        assertNotNull(area.getMetadata().get(Detector.META_UPLOAD));
        assertEquals(MODEL, area.getMetadata().get(HubsegObjects.META_REGION));
        // and Hubseg.detect(imageData) finds that region again by its metadata
        assertEquals(3, Hubseg.detect(imageData));
        assertEquals(3, hubsegObjects(imageData).size());
        imageData.close();
    }

    private Project<BufferedImage> project(String... names) throws Exception {
        // a folder: the project file is project.qpproj inside it
        Path folder = Files.createDirectories(tmp.resolve("project"));
        Project<BufferedImage> project = Projects.createProject(folder.toFile(), BufferedImage.class);
        for (String name : names) {
            Path slide = TestImages.writeSlide(slides.resolve(tmp.getFileName() + "-" + name), 1.0);
            ProjectImageEntry<BufferedImage> entry = project.addImage(TestImages.open(slide).getBuilder());
            entry.setImageName(name);
        }
        project.syncChanges();
        return project;
    }

    @Test
    void detectProjectDetectsInTheOpenImageAndSavesEveryImage() throws Exception {
        Project<BufferedImage> project = project("a.tif", "b.tif");
        ProjectImageEntry<BufferedImage> a = project.getImageList().get(0);
        ProjectImageEntry<BufferedImage> b = project.getImageList().get(1);
        ImageData<BufferedImage> openA = a.readImageData(); // as if shown in a viewer, with an unsaved annotation
        PathObject drawn = PathObjects.createAnnotationObject(
                ROIs.createEllipseROI(300, 300, 40, 40, ImagePlane.getDefaultPlane()));
        openA.getHierarchy().addObject(drawn);

        Map<String, Integer> counts = Hubseg.detectProject(project, List.of(openA));
        assertEquals(Map.of("a.tif", 3, "b.tif", 3), counts);
        assertFindsTheDisks(hubsegObjects(openA));
        assertTrue(openA.getHierarchy().getAnnotationObjects().contains(drawn), "the open image was not used");
        try (Stream<Path> files = Files.list(tmp.resolve("project"))) {
            assertTrue(files.anyMatch(p -> p.getFileName().toString().endsWith(".qpproj")));
        }
        ImageData<BufferedImage> savedA = a.readImageData();
        assertFindsTheDisks(hubsegObjects(savedA));
        assertTrue(savedA.getHierarchy().getAnnotationObjects().stream().anyMatch(p -> p.getID().equals(drawn.getID())),
                "the saved image lost the viewer's unsaved annotation");
        ImageData<BufferedImage> savedB = b.readImageData();
        assertFindsTheDisks(hubsegObjects(savedB));
        for (ImageData<BufferedImage> d : List.of(openA, savedA, savedB)) {
            d.close();
        }
    }

    @Test
    void exportedLabelsAreAcceptedByTheServerAndWrittenIntoTheProject() throws Exception {
        Project<BufferedImage> project = project("c.tif");
        ProjectImageEntry<BufferedImage> entry = project.getImageList().get(0);
        ImageData<BufferedImage> imageData = entry.readImageData();
        assertEquals(3, Hubseg.detect(imageData));
        ReviewQueue queue = new ReviewSession(imageData, RejectBehaviour.KEEP_AS_REJECTED, false).queue();
        List<PathObject> objects = hubsegObjects(imageData);
        queue.accept(objects.get(0).getID().toString());
        queue.reject(objects.get(1).getID().toString());
        entry.saveImageData(imageData);
        // the decisions survive the project's save and reload
        ImageData<BufferedImage> reloaded = entry.readImageData();
        Map<ReviewState, Long> states = hubsegObjects(reloaded).stream()
                .collect(Collectors.groupingBy(QuPathObjects::reviewState, Collectors.counting()));
        assertEquals(Map.of(ReviewState.ACCEPTED, 1L, ReviewState.REJECTED, 1L, ReviewState.PENDING, 1L), states);
        reloaded.close();

        List<LabelExporter.Prepared> prepared = LabelExporter.prepare(imageData, LabelExporter.regions(imageData), false);
        assertEquals(1, prepared.size());
        LabelSetBuilder.Summary summary = prepared.get(0).summary();
        assertEquals(1, summary.positives());
        assertEquals(1, summary.negatives());
        assertEquals(1, summary.undecided());
        // the payload exactly as the extension sends it: POST /v1/labels -> 201
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(server.url + "/v1/labels"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(prepared.get(0).labelSet().toString())).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(201, response.statusCode(), response.body());

        List<String> ids = Hubseg.exportLabels(project, imageData, entry.getImageName(), false);
        assertEquals(1, ids.size());
        Path labels = tmp.resolve("project").resolve("hubseg").resolve("labels");
        List<Path> files;
        try (Stream<Path> list = Files.list(labels)) {
            files = list.filter(p -> p.getFileName().toString().startsWith("c.tif-")).toList();
        }
        assertEquals(1, files.size(), "label set file in " + labels);
        JsonObject written = JsonParser.parseString(Files.readString(files.get(0))).getAsJsonObject();
        assertEquals(LabelSetBuilder.FORMAT, written.get("format").getAsString());
        assertEquals(List.of(ids.get(0)), LabelExporter.projectLabelSetIds(project));
        JsonObject stored = server.client().labelSet(ids.get(0));
        assertNotNull(stored);
        imageData.close();
    }

    @Test
    void withoutAProjectScriptsGetOneReadableError() throws Exception {
        ImageData<BufferedImage> imageData = TestImages.imageData(TestImages.writeSlide(tmp.resolve("x.tif"), 1.0));
        HubsegException noProject = assertThrows(HubsegException.class,
                () -> Hubseg.exportLabels(null, imageData, "x.tif", false));
        assertTrue(noProject.getMessage().contains("project"), noProject.getMessage());
        assertThrows(HubsegException.class, () -> Hubseg.detectProject(null, List.of()));
        imageData.close();
    }
}
