package qupath.ext.hubseg.core;

import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Phases and ETA of a self-training job, and the summary read from the new model's card. */
class AdaptationTest {

    private static final long S = 1_000_000_000L;

    @Test
    void phasesFollowTheServersMessagesAndTheEtaItsPace() {
        AtomicLong clock = new AtomicLong();
        AdaptationProgress progress = new AdaptationProgress(clock::get);
        assertEquals("Waiting for the server", progress.update(new JobStatus.Progress(0, 0, "queued")));

        assertTrue(progress.update(new JobStatus.Progress(0, 1, "round 1/1 teacher: image 1/4 a.tif"))
                .startsWith("Phase 1 of 3: Teacher pass"));
        clock.addAndGet(60 * S);
        // image 2 of 4, half its tiles: 37.5 % of the pass in 60 s -> 100 s left
        String text = progress.update(new JobStatus.Progress(5, 10, "round 1/1 teacher: image 2/4 b.tif: tiles"));
        assertEquals(AdaptationProgress.Phase.TEACHER, progress.phase());
        assertTrue(text.endsWith("about 2 min left"), text);

        assertTrue(progress.update(new JobStatus.Progress(4, 4, "round 1/1 pseudo-labels: 9 confident, 3 uncertain "
                + "objects; 20% of tissue ignored")).startsWith("Phase 1 of 3"));
        text = progress.update(new JobStatus.Progress(1, 40, "round 1/1 training: epoch 1/40"));
        assertTrue(text.startsWith("Phase 2 of 3: Training") && !text.contains("left"), "no ETA from a fresh phase: " + text);
        clock.addAndGet(30 * S);
        text = progress.update(new JobStatus.Progress(20, 40, "round 1/1 training: epoch 20/40"));
        assertTrue(text.endsWith("less than a minute left"), text);
        assertTrue(progress.update(new JobStatus.Progress(0, 1, "round 1/1 calibrating: student on its pseudo-labelled "
                + "images")).startsWith("Phase 3 of 3: Calibration"));
    }

    @Test
    void theSummaryReadsTheSelfTrainingRecordAndTheGate() {
        ModelInfo model = ModelInfo.fromJson(JsonParser.parseString("""
                {"name": "hubseg-pas-glomeruli-v1-selftrained-v2", "active": false,
                 "energy_gate": {"cutoff": 0.8124, "source": "transferred from teacher"},
                 "provenance": {"self_training": {"image_count": 4, "pseudo_positive_objects": 97,
                   "uncertain_objects": 236, "ignored_tissue_fraction": 0.35}}}""").getAsJsonObject());
        AdaptationSummary summary = AdaptationSummary.of(model);
        assertEquals(new AdaptationSummary("hubseg-pas-glomeruli-v1-selftrained-v2", 4, 97, 236, 0.35, 0.8124,
                "transferred from teacher"), summary);
        String text = summary.describe();
        assertTrue(text.contains("97 confident glomeruli") && text.contains("236 uncertain")
                && text.contains("35 % of the tissue ignored") && text.contains("energy cut-off 0.812"), text);

        AdaptationSummary bare = AdaptationSummary.of(ModelInfo.fromJson(JsonParser.parseString(
                "{\"name\": \"m\"}").getAsJsonObject()));
        assertTrue(bare.describe().contains("Uncertainty gate: none"), bare.describe());
    }
}
