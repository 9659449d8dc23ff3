package qupath.ext.hubseg.core;

import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
                "transferred from teacher", AdaptationSummary.Safety.none()), summary);
        assertTrue(summary.safeToActivate(), "a card without a safety record is not flagged");
        String text = summary.describe();
        assertTrue(text.contains("97 confident glomeruli") && text.contains("236 uncertain")
                && text.contains("35 % of the tissue ignored") && text.contains("energy cut-off 0.812"), text);

        AdaptationSummary bare = AdaptationSummary.of(ModelInfo.fromJson(JsonParser.parseString(
                "{\"name\": \"m\"}").getAsJsonObject()));
        assertTrue(bare.describe().contains("Uncertainty gate: none"), bare.describe());
        assertTrue(bare.describe().contains("Safety check: not done"), bare.describe());
    }

    /** The card's safety record as hubseg.training.safety.check_student writes it. */
    private static ModelInfo adapted(String verdict, String reasons, double studentRecall) {
        return ModelInfo.fromJson(JsonParser.parseString("""
                {"name": "lab-b-v2-selftrained-v3", "energy_gate": {"cutoff": 0.77, "source": "transferred from teacher"},
                 "provenance": {"self_training": {"image_count": 3, "pseudo_positive_objects": 41,
                   "uncertain_objects": 17, "ignored_tissue_fraction": 0.22,
                   "safety": {"verdict": "%s", "reasons": [%s], "held_back_images": 4, "teacher_confident_objects": 12,
                     "teacher": {"recall": 1.0, "dice": 0.96, "background_objects": 0, "matched": 12},
                     "student": {"recall": %s, "dice": 0.41, "background_objects": 9, "matched": 3},
                     "bounds": {"max_recall_drop": 0.35}, "activate_by_default": false}}}}"""
                .formatted(verdict, reasons, studentRecall)).getAsJsonObject());
    }

    @Test
    void aFlaggedSafetyCheckIsReadAndSaidPlainly() {
        AdaptationSummary flagged = AdaptationSummary.of(adapted("flagged",
                "\"the student finds 25% of the teacher's 12 confident held-back objects\"", 0.25));
        AdaptationSummary.Safety safety = flagged.safety();
        assertEquals("flagged", safety.verdict());
        assertEquals(4, safety.heldBackImages());
        assertEquals(12, safety.teacherConfidentObjects());
        assertEquals(0.25, safety.studentRecall());
        assertEquals(0.41, safety.studentDice());
        assertEquals(1.0, safety.teacherRecall());
        assertEquals(0.96, safety.teacherDice());
        assertEquals(List.of("the student finds 25% of the teacher's 12 confident held-back objects"), safety.reasons());
        assertFalse(flagged.safeToActivate());
        String text = flagged.describe();
        assertTrue(text.contains("SAFETY CHECK FLAGGED") && text.contains("finds 25 % of the current model's 12 confident")
                && text.contains("pixel agreement 0.41 (current 0.96)") && text.contains("- the student finds 25%"), text);

        AdaptationSummary ok = AdaptationSummary.of(adapted("ok", "", 0.92));
        assertTrue(ok.safeToActivate());
        assertTrue(ok.describe().contains("Safety check: passed") && !ok.describe().contains("FLAGGED"), ok.describe());
    }
}
