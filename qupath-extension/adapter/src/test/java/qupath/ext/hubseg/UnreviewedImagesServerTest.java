package qupath.ext.hubseg;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qupath.ext.hubseg.core.ApiException;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.JobState;
import qupath.ext.hubseg.core.JobStatus;
import qupath.ext.hubseg.core.RejectBehaviour;
import qupath.ext.hubseg.core.TestServer;
import qupath.ext.hubseg.core.TrainingRequest;
import qupath.ext.hubseg.core.UnlabelledImage;
import qupath.lib.projects.Project;
import qupath.lib.projects.ProjectImageEntry;
import qupath.lib.projects.Projects;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * "Also learn from the unreviewed images of this project" end to end: a real QuPath project whose images QuPath's
 * ImageJ server opens, the repository's real {@code hubseg serve} (tiny U-Net, 1 µm/px), paths where the server may
 * read them and pixels read through QuPath and uploaded ({@code POST /v1/uploads}) where it may not. The training
 * jobs are cancelled once accepted: only what is sent is checked here (the server tests run whole self-training jobs).
 */
class UnreviewedImagesServerTest {

    private static final String TINY_MODEL = "tiny-test-v1";
    private static TestServer server;
    private static Path slides;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        server = TestServer.shared();
        slides = Files.createDirectories(server.slidesDir.resolve("qupath-unreviewed"));
    }

    @AfterAll
    static void resetPreferences() {
        HubsegPreferences.set(HubsegSettings.defaults());
    }

    private static HubsegSettings settings(boolean alwaysUpload) {
        return new HubsegSettings(server.url.toString(), "", "", "none", null, "annotation",
                RejectBehaviour.KEEP_AS_REJECTED, alwaysUpload, false);
    }

    private static TrainingRequest oneEpoch() {
        return new TrainingRequest(TINY_MODEL, List.of(), TrainingRequest.params(1, null, 2, null), false);
    }

    private static void cancel(HubsegClient client, JobStatus job) {
        JobStatus done = client.await(job.id(), null, () -> true, Duration.ofMillis(200));
        assertTrue(done.state().isFinal(), done.toString());
    }

    /** inside.tif under the server's slides root (1 µm/px), outside.tif in a private folder (0.5 µm/px), and
     * reviewed.tif with an exported label set. */
    private Project<BufferedImage> project() throws Exception {
        Path folder = Files.createDirectories(tmp.resolve("project"));
        Project<BufferedImage> project = Projects.createProject(folder.toFile(), BufferedImage.class);
        Path inside = TestImages.writeSlide(slides.resolve(tmp.getFileName() + "-inside.tif"), 1.0);
        Path outside = TestImages.writeSlide(tmp.resolve("private").resolve("outside.tif"), 0.5);
        Path reviewed = TestImages.writeSlide(slides.resolve(tmp.getFileName() + "-reviewed.tif"), 1.0);
        for (Object[] image : new Object[][]{{inside, "inside.tif"}, {outside, "outside.tif"}, {reviewed, "reviewed.tif"}}) {
            ProjectImageEntry<BufferedImage> entry = project.addImage(TestImages.open((Path) image[0]).getBuilder());
            entry.setImageName((String) image[1]);
        }
        project.syncChanges();
        LabelExporter.write(project, "reviewed.tif", new JsonObject()); // as "Export corrected labels" names it
        return project;
    }

    @Test
    void pathsWhereTheServerMayReadThemAndUploadedPixelsElsewhere() throws Exception {
        Project<BufferedImage> project = project();
        List<UnreviewedImages.Candidate> candidates = UnreviewedImages.find(project);
        assertEquals(List.of("inside.tif", "outside.tif"), candidates.stream().map(UnreviewedImages.Candidate::name).toList());
        assertTrue(candidates.stream().allMatch(c -> c.localPath() != null), candidates.toString());
        assertEquals(candidates.stream().map(UnreviewedImages.Candidate::localPath).toList(),
                UnreviewedImages.localPaths(project));

        HubsegClient client = server.client();
        List<String> steps = new ArrayList<>();
        UnreviewedImages.Started started = UnreviewedImages.startTraining(client, settings(false), oneEpoch(),
                candidates, steps::add);
        assertEquals(List.of(), started.skipped());
        List<UnlabelledImage> sent = started.sent().unlabelled();
        assertEquals(2, sent.size());
        // the server may read inside.tif: its path, with QuPath's pixel size
        assertEquals(candidates.get(0).localPath(), sent.get(0).path());
        assertEquals(1.0, sent.get(0).pixelSizeUm(), 1e-9);
        // outside.tif: the server refused the path (forbidden_path, unlabelled[1].path), so QuPath uploaded it
        String uploadId = sent.get(1).uploadId();
        assertNotNull(uploadId, sent.toString());
        assertNull(sent.get(1).path());
        assertTrue(steps.stream().anyMatch(s -> s.contains("outside.tif") && s.contains("uploading")), steps.toString());
        JsonObject json = started.sent().toJson();
        assertEquals(uploadId, json.getAsJsonArray("unlabelled").get(1).getAsJsonObject().get("upload_id").getAsString());
        assertEquals(1, json.getAsJsonArray("unlabelled").get(1).getAsJsonObject().size(), json.toString());
        // read through QuPath's ImageJ server at the model's 1 µm/px: 384 px of 0.5 µm -> 192 px
        BufferedImage uploaded = ImageIO.read(server.dataDir.resolve("uploads").resolve(uploadId + ".png").toFile());
        assertEquals(TestImages.SIZE / 2, uploaded.getWidth());
        assertEquals(TestImages.SIZE / 2, uploaded.getHeight());

        JobStatus job = started.job();
        assertEquals("training", job.kind());
        ApiException busy = assertThrows(ApiException.class, () -> client.deleteUpload(uploadId));
        assertEquals(409, busy.status(), busy.getMessage());
        cancel(client, job);
        client.deleteUpload(uploadId); // the job is over: the upload may go
    }

    @Test
    void alwaysUploadSendsPixelsAndTheClientUploadsDirectly() throws Exception {
        Project<BufferedImage> project = project();
        HubsegClient client = server.client();
        UnreviewedImages.Started started = UnreviewedImages.startTraining(client, settings(true), oneEpoch(),
                UnreviewedImages.find(project).subList(0, 1), null);
        UnlabelledImage only = started.sent().unlabelled().get(0);
        assertNotNull(only.uploadId(), "alwaysUpload sends pixels even for a file the server could read");
        cancel(client, started.job());

        // HubsegClient.upload + TrainingRequest with an upload id, as a script would do it
        byte[] png = Files.readAllBytes(server.dataDir.resolve("uploads").resolve(only.uploadId() + ".png"));
        String id = client.upload(png, "tile.png", 1.0);
        assertTrue(id.matches("[0-9a-f]{32}"), id);
        JobStatus job = client.startTraining(oneEpoch().withUnlabelled(List.of(UnlabelledImage.ofUpload(id))));
        assertTrue(job.state() == JobState.QUEUED || job.state() == JobState.RUNNING, job.toString());
        cancel(client, job);
        ApiException badSize = assertThrows(ApiException.class, () -> client.upload(png, "tile.png", 500.0));
        assertEquals(422, badSize.status());
        assertEquals("pixel_size_um", badSize.field());
        ApiException unknown = assertThrows(ApiException.class, () -> client.startTraining(
                oneEpoch().withUnlabelled(List.of(UnlabelledImage.ofUpload("e".repeat(32))))));
        assertEquals(404, unknown.status());
        assertEquals("unlabelled[0].upload_id", unknown.field());
    }

    @Test
    void cancellingWhileUploadingStartsNothingAndRemovesTheUploads() throws Exception {
        Project<BufferedImage> project = project();
        HubsegClient client = server.client();
        Path uploads = server.dataDir.resolve("uploads");
        List<Path> before;
        try (var files = Files.list(uploads)) {
            before = files.sorted().toList();
        }
        int jobsBefore = client.jobs(null, "training").size();
        AtomicBoolean cancel = new AtomicBoolean();
        List<String> steps = new ArrayList<>();
        HubsegException cancelled = assertThrows(HubsegException.class, () -> UnreviewedImages.startTraining(client,
                settings(true), oneEpoch(), UnreviewedImages.find(project), text -> {
                    steps.add(text);
                    cancel.set(text.contains("uploading")); // the user cancels while the first image uploads
                }, cancel::get));
        assertTrue(cancelled.getMessage().contains("no training was started"), cancelled.getMessage());
        assertEquals(1, steps.size(), steps.toString());
        try (var files = Files.list(uploads)) {
            assertEquals(before, files.sorted().toList(), "the first image's upload was not removed");
        }
        assertEquals(jobsBefore, client.jobs(null, "training").size());
    }

    @Test
    void theUploadDownsampleFollowsTheModelAndTheUploadLimit() {
        assertEquals(2.0, UnreviewedImages.uploadDownsample(1000, 1000, 0.5, 1.0), 1e-9);
        assertEquals(1.0, UnreviewedImages.uploadDownsample(1000, 1000, 2.0, 1.0), 1e-9, "never finer than the image");
        assertEquals(1.0, UnreviewedImages.uploadDownsample(1000, 1000, 0.5, Double.NaN), 1e-9);
        // a 40000² slide at 0.25 µm/px is 400 MP at the model's 0.5 µm/px: a coarser downsample keeps it <= the limit
        double d = UnreviewedImages.uploadDownsample(40_000, 40_000, 0.25, 0.5);
        assertTrue(d > 2.0, "downsample " + d);
        assertTrue(UnreviewedImages.uploadPixels(40_000, 40_000, d) <= Detector.MAX_UPLOAD_PIXELS);
        assertTrue(UnreviewedImages.uploadPixels(40_000, 40_000, d * 0.99) > Detector.MAX_UPLOAD_PIXELS, "not coarser than needed");
    }

    @Test
    void onlyRefusedPathsFallBackToAnUpload() {
        assertEquals(3, UnreviewedImages.refusedPath(new ApiException(403, "forbidden_path", "m", "unlabelled[3].path")));
        assertEquals(0, UnreviewedImages.refusedPath(new ApiException(404, "not_found", "m", "unlabelled[0].path")));
        assertEquals(-1, UnreviewedImages.refusedPath(new ApiException(422, "invalid_input", "m", "unlabelled[0].path")));
        assertEquals(-1, UnreviewedImages.refusedPath(new ApiException(404, "not_found", "m", "base_model")));
        assertEquals(-1, UnreviewedImages.refusedPath(new ApiException(404, "not_found", "m")));
    }
}
