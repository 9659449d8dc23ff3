package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/** The core client against the real server: every endpoint, job progress and cancel, errors. */
class ServerIntegrationTest {

    private static final Duration POLL = Duration.ofMillis(100);
    private static final String HEX32 = "[0-9a-f]{32}";
    private static TestServer server;
    private static HubsegClient client;

    @BeforeAll
    static void startServer() {
        server = TestServer.shared();
        client = server.client();
    }

    @AfterAll
    static void printServerOutputOnFailure() {
        // the shared server is stopped by its shutdown hook
    }

    /** Gives up waiting (cancelling the job) after two minutes so a stuck server cannot hang CI. */
    private static BooleanSupplier safetyCancel() {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        return () -> System.nanoTime() > deadline;
    }

    private static DetectionRequest slideRequest(Region region, JsonObject geometry) {
        return new DetectionRequest(server.slide.toString(), region, geometry, 1.0, TestServer.THRESHOLD_MODEL,
                new DetectionOptions("none", null, "annotation"));
    }

    private static DetectionResult detect(DetectionRequest request) {
        JobStatus job = client.submitDetection(request);
        JobStatus done = client.await(job.id(), null, safetyCancel(), POLL);
        JobPoller.requireSucceeded(done);
        return client.result(job.id());
    }

    private static double[] bbox(JsonObject feature) {
        double[] b = {Double.MAX_VALUE, Double.MAX_VALUE, -Double.MAX_VALUE, -Double.MAX_VALUE};
        JsonArray ring = feature.getAsJsonObject("geometry").getAsJsonArray("coordinates").get(0).getAsJsonArray();
        for (var p : ring) {
            double x = p.getAsJsonArray().get(0).getAsDouble();
            double y = p.getAsJsonArray().get(1).getAsDouble();
            b[0] = Math.min(b[0], x);
            b[1] = Math.min(b[1], y);
            b[2] = Math.max(b[2], x);
            b[3] = Math.max(b[3], y);
        }
        return b;
    }

    private static double[] centre(JsonObject feature) {
        double[] b = bbox(feature);
        return new double[]{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2};
    }

    private static void assertReadable(HubsegException e) {
        String m = e.getMessage();
        assertNotNull(m);
        assertTrue(m.length() > 10, "too short: " + m);
        assertFalse(m.contains("Traceback") || m.contains("Exception"), "stack trace leaked: " + m);
    }

    private static ApiException assertApiError(int status, String code, Runnable call) {
        ApiException e = assertThrows(ApiException.class, call::run);
        assertEquals(status, e.status(), e.getMessage());
        if (code != null) {
            assertEquals(code, e.code(), e.getMessage());
        }
        assertFalse(e.getMessage().startsWith("HTTP "), "expected the server's own message: " + e.getMessage());
        assertReadable(e);
        return e;
    }

    // ---- reference glomeruli -----------------------------------------------------------------------

    /** The model every installation ships; its card lists six reference crops. */
    private static final String SHIPPED_MODEL = "hubseg-pas-glomeruli-v1";

    @Test
    void referenceCropsOfTheShippedModelAreImagesOfTheCardsSize() throws IOException {
        List<ModelReference> references = ModelReference.of(client.model(SHIPPED_MODEL));
        assertEquals(6, references.size(), references.toString());
        for (ModelReference reference : references) {
            assertEquals("/v1/models/" + SHIPPED_MODEL + "/references/" + reference.index(), reference.url());
            BufferedImage crop = ImageIO.read(new java.io.ByteArrayInputStream(client.referenceCrop(reference)));
            assertNotNull(crop, "JPEG or PNG bytes for " + reference.url());
            assertEquals(reference.width(), crop.getWidth(), reference.url());
            assertEquals(reference.height(), crop.getHeight(), reference.url());
        }
        ModelReference missing = new ModelReference(SHIPPED_MODEL, 99, "/v1/models/" + SHIPPED_MODEL + "/references/99",
                0, 0, Double.NaN, "", Double.NaN, Double.NaN, Double.NaN);
        ApiException e = assertApiError(404, null, () -> client.referenceCrop(missing));
        assertTrue(e.getMessage().contains("1"), "names the valid indexes: " + e.getMessage());
        assertTrue(ModelReference.of(client.model(TestServer.TINY_MODEL)).isEmpty(), "a card without references");
    }

    @Test
    void detectionMarksTheRequestedNumberOfReferenceObjects() {
        DetectionRequest request = new DetectionRequest(server.slide.toString(), null, null, 1.0,
                TestServer.THRESHOLD_MODEL, new DetectionOptions("none", null, "annotation", 2));
        assertEquals(2, request.toJson().getAsJsonObject("options").get("references").getAsInt());
        DetectionResult result = detect(request);
        List<ReviewItem> items = result.features().stream()
                .map(f -> Features.reviewItem(f, result.energyGateCutoff())).toList();
        List<Long> ranks = items.stream().filter(ReviewItem::isReference).map(ReviewItem::referenceRank).sorted().toList();
        long confident = items.stream().filter(i -> !i.uncertain()).count();
        assertTrue(confident > 0, "the test slide has confident objects: " + items);
        assertEquals(List.of(1L, 2L).subList(0, (int) Math.min(2, confident)), ranks, items.toString());
        assertTrue(items.stream().filter(ReviewItem::isReference).noneMatch(ReviewItem::uncertain),
                "never an uncertain object: " + items);

        DetectionResult none = detect(slideRequest(null, null));
        assertTrue(none.features().stream().map(f -> Features.reviewItem(f, Double.NaN)).noneMatch(ReviewItem::isReference),
                "no references unless asked");
    }

    // ---- health and diagnostics --------------------------------------------------------------------

    @Test
    void healthModelsAndDiagnostics() {
        Health health = client.health();
        assertEquals("ok", health.status());
        assertEquals(TestServer.THRESHOLD_MODEL, health.activeModel());
        assertFalse(health.authRequired());
        assertFalse(health.version().isBlank());

        List<ModelInfo> models = client.models();
        Map<String, ModelInfo> byName = models.stream().collect(Collectors.toMap(ModelInfo::name, m -> m));
        assertTrue(byName.keySet().containsAll(Set.of(TestServer.THRESHOLD_MODEL, TestServer.TINY_MODEL)), byName.keySet().toString());
        ModelInfo threshold = byName.get(TestServer.THRESHOLD_MODEL);
        assertTrue(threshold.active());
        assertEquals(1.0, threshold.pixelSizeUm());
        assertEquals(64, threshold.tileSize());
        assertEquals("Glomerulus", threshold.className());
        assertEquals(TestServer.TINY_MODEL, client.model(TestServer.TINY_MODEL).name());

        String diagnostics = client.diagnostics();
        assertTrue(diagnostics.contains(server.url.toString()), diagnostics);
        assertTrue(diagnostics.contains(TestServer.THRESHOLD_MODEL + "  (active)"), diagnostics);
        assertTrue(diagnostics.contains(TestServer.TINY_MODEL), diagnostics);

        JsonObject api = client.openApi();
        assertTrue(api.getAsJsonObject("paths").has("/v1/detections"));
        // the URL may be given with a trailing /v1/
        assertEquals("ok", new HubsegClient(URI.create(server.url + "/v1/"), null).health().status());
    }

    // ---- detection ----------------------------------------------------------------------------------

    @Test
    void detectReportsProgressAndReturnsObjectsInReviewOrder() {
        JobStatus job = client.submitDetection(slideRequest(new Region(0, 0, 384, 384), null));
        assertTrue(job.id().matches(HEX32), job.id());
        assertEquals("detection", job.kind());
        assertFalse(job.state().isFinal());

        List<JobStatus> seen = new ArrayList<>();
        JobStatus done = client.await(job.id(), seen::add, safetyCancel(), POLL);
        assertEquals(JobState.SUCCEEDED, done.state(), String.valueOf(done.error()));
        assertTrue(done.progress().total() > 0, done.progress().toString());
        assertEquals(done.progress().total(), done.progress().done());
        assertEquals(1.0, done.progress().fraction());
        assertFalse(done.progress().describe().isBlank());
        assertFalse(seen.isEmpty());
        assertTrue(done.raw().get("result_available").getAsBoolean());

        DetectionResult result = client.result(job.id());
        assertEquals(3, result.size(), result.raw().toString());
        assertEquals(TestServer.THRESHOLD_MODEL, result.modelName());
        assertEquals(TestServer.GATE_CUTOFF, result.energyGateCutoff(), 1e-9);

        // every disk is found once, at the right place, with about the right area (1 µm/px)
        double[][] disks = {{96, 96, 40}, {288, 110, 36}, {180, 280, 44}};
        for (double[] disk : disks) {
            JsonObject match = result.features().stream()
                    .filter(f -> Math.hypot(centre(f)[0] - disk[0], centre(f)[1] - disk[1]) < 6)
                    .findFirst().orElseThrow(() -> new AssertionError("no object at " + disk[0] + "," + disk[1]));
            double area = Features.measurements(match).get(HubsegObjects.MEASUREMENT_AREA);
            assertEquals(Math.PI * disk[2] * disk[2], area, 0.2 * Math.PI * disk[2] * disk[2]);
            Map<String, String> metadata = Features.metadata(match);
            assertEquals(TestServer.THRESHOLD_MODEL, metadata.get(HubsegObjects.META_MODEL));
            assertEquals("pending", metadata.get(HubsegObjects.META_REVIEW));
            assertTrue(HubsegObjects.isHubsegObject(metadata));
        }

        // the review queue orders like the server: uncertain (below the gate) first, then energy ascending
        List<ReviewItem> items = result.features().stream()
                .map(f -> Features.reviewItem(f, result.energyGateCutoff())).toList();
        ReviewQueue queue = new ReviewQueue(items, Map.of());
        List<String> serverOrder = result.features().stream().map(f -> Json.string(f, "id", "")).toList();
        assertEquals(serverOrder, queue.items().stream().map(ReviewItem::id).toList());
        ReviewItem first = queue.items().get(0);
        assertTrue(first.uncertain(), "the palest disk is below the energy gate");
        assertEquals(HubsegObjects.CLASS_UNCERTAIN, first.className());
        assertFalse(queue.items().get(1).uncertain());
        assertTrue(queue.items().get(1).energy() <= queue.items().get(2).energy());
        assertEquals("reviewed 0 / 3", queue.counterText());

        client.deleteResult(job.id());
        assertApiError(404, "not_found", () -> client.result(job.id()));
    }

    @Test
    void detectInsideAGeometryKeepsOnlyObjectsThere() {
        JsonObject around = Geo.rectangle(40, 40, 120, 120);
        DetectionResult result = detect(slideRequest(null, around));
        assertEquals(1, result.size(), result.raw().toString());
        double[] c = centre(result.features().get(0));
        assertEquals(96, c[0], 6);
        assertEquals(96, c[1], 6);
    }

    @Test
    void cancelStopsARunningJob() {
        JobStatus job = client.submitDetection(new DetectionRequest(server.bigSlide.toString(), null, null, 1.0,
                TestServer.THRESHOLD_MODEL, DetectionOptions.defaults()));
        JobStatus done = client.await(job.id(), null, () -> true, POLL);
        assertEquals(JobState.CANCELLED, done.state());
        assertEquals(JobState.CANCELLED, client.cancel(job.id()).state(), "cancel is idempotent");
        assertTrue(client.jobs(JobState.CANCELLED, "detection").stream().anyMatch(j -> j.id().equals(job.id())));
        HubsegException e = assertThrows(HubsegException.class, () -> JobPoller.requireSucceeded(done));
        assertEquals("The detection job was cancelled.", e.getMessage());
        assertApiError(409, "conflict", () -> client.result(job.id()));
    }

    // ---- upload form ---------------------------------------------------------------------------------

    static byte[] discsPng(int size, int[][] discs) throws IOException {
        BufferedImage image = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(new Color(235, 235, 235));
        g.fillRect(0, 0, size, size);
        g.setColor(new Color(60, 20, 90));
        for (int[] d : discs) {
            g.fillOval(d[0] - d[2], d[1] - d[2], 2 * d[2], 2 * d[2]);
        }
        g.dispose();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(image, "png", out);
        return out.toByteArray();
    }

    @Test
    void uploadFormReturnsLevel0CoordinatesAndAnUploadIdForLabels() throws IOException {
        // 384 px uploaded at downsample 2 of a 0.5 µm/px slide: 1 µm per uploaded pixel, the model's scale
        byte[] png = discsPng(384, new int[][]{{96, 96, 40}, {280, 260, 44}});
        UploadDetectionRequest request = new UploadDetectionRequest(png, "region.png", 1000, 2000, 2.0, 0.5, null, null,
                TestServer.THRESHOLD_MODEL, new DetectionOptions(null, null, "detection"));
        JobStatus job = client.submitDetection(request);
        assertNotNull(job.uploadId());
        assertTrue(job.uploadId().matches(HEX32), job.uploadId());
        JobStatus done = client.await(job.id(), null, safetyCancel(), POLL);
        assertEquals(JobState.SUCCEEDED, done.state(), String.valueOf(done.error()));
        DetectionResult result = client.result(job.id());
        assertEquals(2, result.size(), result.raw().toString());
        List<double[]> centres = result.features().stream().map(ServerIntegrationTest::centre).toList();
        assertTrue(centres.stream().anyMatch(c -> Math.hypot(c[0] - 1192, c[1] - 2192) < 10), "level-0 centre of disc 1");
        assertTrue(centres.stream().anyMatch(c -> Math.hypot(c[0] - 1560, c[1] - 2520) < 10), "level-0 centre of disc 2");
        assertEquals("detection", result.features().get(0).getAsJsonObject("properties").get("objectType").getAsString());

        // the uploaded pixels can be labelled without any path
        LabelSetBuilder.Result labels = new LabelSetBuilder().uploadId(job.uploadId()).pixelSizeUm(0.5)
                .addRegion(Geo.rectangle(1000, 2000, 768, 768)).model(result.modelName())
                .addFeature(result.features().get(0)).build();
        String id = client.postLabels(labels.labelSet());
        assertEquals(job.uploadId(), client.labelSet(id).getAsJsonObject("image").get("upload_id").getAsString());
    }

    // ---- labels and training ---------------------------------------------------------------------------

    /** Reviews a detection like a user would: accept, reject, edit (shift the shape), and posts it. */
    private static String reviewAndPostLabels() {
        DetectionResult result = detect(slideRequest(new Region(0, 0, 384, 384), null));
        List<JsonObject> features = new ArrayList<>();
        for (JsonObject f : result.features()) {
            features.add(f.deepCopy());
        }
        for (JsonObject f : features) {
            // what the adapter stores at import: the proposed shape's fingerprint
            f.getAsJsonObject("properties").getAsJsonObject("metadata")
                    .addProperty(HubsegObjects.META_SHAPE, Geo.fingerprint(f.getAsJsonObject("geometry")));
        }
        setReview(features.get(0), "accepted");
        setReview(features.get(1), "rejected");
        // edited: move every vertex by 2 px
        for (var p : features.get(2).getAsJsonObject("geometry").getAsJsonArray("coordinates").get(0).getAsJsonArray()) {
            JsonArray xy = p.getAsJsonArray();
            xy.set(0, new com.google.gson.JsonPrimitive(xy.get(0).getAsDouble() + 2));
        }
        LabelSetBuilder builder = new LabelSetBuilder().imagePath(server.slide.toString()).pixelSizeUm(1.0)
                .addRegion(Geo.rectangle(0, 0, 384, 384)).model(result.modelName());
        features.forEach(builder::addFeature);
        LabelSetBuilder.Result labels = builder.build();
        assertEquals(2, labels.summary().positives(), labels.summary().describe());
        assertEquals(1, labels.summary().negatives());
        String id = client.postLabels(labels.labelSet());
        assertTrue(id.matches(HEX32), id);
        return id;
    }

    private static void setReview(JsonObject feature, String state) {
        feature.getAsJsonObject("properties").getAsJsonObject("metadata").addProperty(HubsegObjects.META_REVIEW, state);
    }

    @Test
    void labelsRoundTrip() {
        String id = reviewAndPostLabels();
        JsonObject stored = client.labelSet(id);
        assertEquals("hubseg-labelset/1", stored.get("format").getAsString());
        assertEquals(server.slide.toString(), stored.getAsJsonObject("image").get("path").getAsString());
        assertEquals("qupath", stored.get("source").getAsString());
        List<String> classesAndStates = new ArrayList<>();
        for (var f : stored.getAsJsonObject("features").getAsJsonArray("features")) {
            JsonObject feature = f.getAsJsonObject();
            classesAndStates.add(Features.className(feature) + "/" + Features.metadata(feature).get(HubsegObjects.META_REVIEW));
            assertFalse(Features.metadata(feature).containsKey(HubsegObjects.META_SHAPE));
        }
        assertEquals(List.of("Glomerulus/accepted", "Rejected/rejected", "Glomerulus/corrected"), classesAndStates);
        JsonObject summary = client.labelSets().stream().filter(s -> id.equals(Json.string(s, "id", null)))
                .findFirst().orElseThrow();
        assertEquals(3, Json.integer(summary, "features_count", -1));
        assertEquals(1, Json.integer(summary, "regions_count", -1));
    }

    @Test
    void trainingJobStartsOnExportedLabels() {
        String id = reviewAndPostLabels();
        JobStatus job = client.startTraining(new TrainingRequest(TestServer.TINY_MODEL, List.of(id),
                TrainingRequest.params(1, 1e-3, 2, 0), false));
        assertEquals("training", job.kind());
        assertTrue(job.id().matches(HEX32));
        assertFalse(job.state().isFinal());
        // the job is real; stop it so the shared CPU stays free
        JobStatus done = client.await(job.id(), null, () -> true, POLL);
        assertTrue(done.state() == JobState.CANCELLED || done.state() == JobState.SUCCEEDED, done.toString());
        if (done.state() == JobState.SUCCEEDED) {  // the dialog shows how the new version's gate was calibrated
            assertNotNull(done.calibration(), done.toString());
            assertTrue(done.calibration().startsWith("calibration:"), done.calibration());
        }
        assertApiError(404, "not_found", () -> client.startTraining(new TrainingRequest(TestServer.TINY_MODEL,
                List.of("0".repeat(32)), null, false)));
    }

    // ---- errors ------------------------------------------------------------------------------------------

    private static void rawJson(String method, String path, String json) {
        client.request(method, path, "application/json", json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void everyErrorBodyBecomesAReadableMessage() {
        String slide = server.slide.toString().replace("\\", "\\\\");
        // 400: not JSON
        assertApiError(400, "bad_request", () -> rawJson("POST", "/v1/detections", "{not json"));
        // 400/422: unknown field, named
        ApiException unknown = assertThrows(ApiException.class, () -> rawJson("POST", "/v1/detections",
                "{\"image\":{\"path\":\"" + slide + "\"},\"colour\":1}"));
        assertTrue(unknown.status() == 400 || unknown.status() == 422, unknown.getMessage());
        assertTrue(unknown.getMessage().contains("colour"), unknown.getMessage());
        // 422: out-of-range option, field named
        ApiException range = assertThrows(ApiException.class, () -> rawJson("POST", "/v1/detections",
                "{\"image\":{\"path\":\"" + slide + "\"},\"options\":{\"threshold\":1.5}}"));
        assertTrue(range.status() == 400 || range.status() == 422, range.getMessage());
        assertTrue(range.getMessage().contains("threshold"), range.getMessage());
        assertReadable(range);
        // 422: region outside the image
        ApiException outside = assertThrows(ApiException.class, () -> client.submitDetection(
                slideRequest(new Region(300, 300, 500, 500), null)));
        assertTrue(outside.status() == 400 || outside.status() == 422, outside.getMessage());
        assertReadable(outside);
        // 403: a path outside the slides roots names the allowed roots
        ApiException forbidden = assertApiError(403, "forbidden_path",
                () -> client.submitDetection(DetectionRequest.wholeImage("/etc/passwd")));
        assertTrue(forbidden.getMessage().contains(server.slidesDir.getFileName().toString()), forbidden.getMessage());
        // 404: unknown job, unknown model (listing valid names), unknown route
        assertApiError(404, "not_found", () -> client.job("0".repeat(32)));
        ApiException noModel = assertApiError(404, "not_found", () -> client.model("no-such-model"));
        assertTrue(noModel.getMessage().contains(TestServer.THRESHOLD_MODEL), noModel.getMessage());
        assertApiError(404, "not_found", () -> client.activateModel("no-such-model"));
        assertApiError(404, null, () -> client.request("GET", "/v1/nothing-here", null, null));
        // 405
        assertApiError(405, "method_not_allowed", () -> client.request("PUT", "/v1/health", "application/json", new byte[]{'{', '}'}));
        // 415: wrong media type, and an upload that is not an image
        assertApiError(415, null, () -> client.request("POST", "/v1/labels", "text/plain", "hello".getBytes(StandardCharsets.UTF_8)));
        ApiException notImage = assertThrows(ApiException.class, () -> client.submitDetection(new UploadDetectionRequest(
                "not an image".getBytes(StandardCharsets.UTF_8), "region.png", 0, 0, 1, 0.5, null, null, null, null)));
        assertTrue(notImage.status() == 415 || notImage.status() == 422 || notImage.status() == 400, notImage.getMessage());
        assertReadable(notImage);
        // invalid label set: named field
        ApiException badLabels = assertThrows(ApiException.class, () -> rawJson("POST", "/v1/labels",
                "{\"format\":\"hubseg-labelset/9\",\"image\":{\"path\":\"" + slide + "\"},\"pixel_size_um\":1,\"regions\":[],"
                        + "\"features\":{\"type\":\"FeatureCollection\",\"features\":[]}}"));
        assertTrue(badLabels.status() == 400 || badLabels.status() == 422, badLabels.getMessage());
        assertTrue(badLabels.getMessage().contains("format"), badLabels.getMessage());
        // missing pixel size: rejected at once, or the job fails saying so
        try {
            JobStatus job = client.submitDetection(new DetectionRequest(server.uncalibratedSlide.toString(),
                    new Region(0, 0, 100, 100), null, null, TestServer.THRESHOLD_MODEL, DetectionOptions.defaults()));
            JobStatus done = client.await(job.id(), null, safetyCancel(), POLL);
            assertEquals(JobState.FAILED, done.state());
            HubsegException failed = assertThrows(HubsegException.class, () -> JobPoller.requireSucceeded(done));
            assertTrue(failed.getMessage().toLowerCase().matches(".*pixel.size.*"), failed.getMessage());
        } catch (ApiException e) {
            assertEquals("missing_pixel_size", e.code(), e.getMessage());
            assertReadable(e);
        }
    }

    @Test
    void unreachableServerNamesUrlAndServeCommand() throws IOException {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        HubsegClient offline = new HubsegClient(URI.create("http://127.0.0.1:" + port), null);
        ServerUnreachableException e = assertThrows(ServerUnreachableException.class, offline::health);
        assertTrue(e.getMessage().startsWith("The hubseg server is not reachable at http://127.0.0.1:" + port + "."),
                e.getMessage());
        assertEquals("hubseg serve --port " + port, e.serveCommand());
        assertTrue(e.getMessage().contains(e.serveCommand()));
        assertThrows(ServerUnreachableException.class, () -> offline.submitDetection(DetectionRequest.wholeImage("/x.tif")));
    }
}
