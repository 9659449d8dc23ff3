package qupath.ext.hubseg;

import com.google.gson.JsonParser;
import javafx.scene.control.Button;
import javafx.scene.control.CheckBox;
import javafx.scene.control.DialogPane;
import javafx.scene.control.Label;
import javafx.scene.input.KeyCode;
import javafx.stage.Window;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.AdaptationSummary;
import qupath.ext.hubseg.core.JobStatus;
import qupath.ext.hubseg.core.ModelInfo;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Adapt to this project in real windows: choosing images, the phases with Cancel, and the summary's offer. */
class AdaptDialogFxTest {

    private static final AdaptDialog.Choices CHOICES = new AdaptDialog.Choices(
            List.of(model("hubseg-pas-glomeruli-v1"), model("lab-b-v2")), "lab-b-v2",
            List.of("biopsy-01.svs", "biopsy-02.svs", "kidney-a.tif"), 2);

    private static ModelInfo model(String name) {
        return ModelInfo.fromJson(JsonParser.parseString("{\"name\": \"" + name + "\"}").getAsJsonObject());
    }

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    @Test
    void theChosenImagesAndModelAreWhatIsAdapted() {
        CompletableFuture<Optional<AdaptDialog.Answer>> answer = Fx.open(() -> AdaptDialog.ask(CHOICES));
        Window w = Fx.titled("hubseg: adapt to this project");
        List<CheckBox> images = Fx.all(w, CheckBox.class, c -> true);
        assertEquals(3, images.size());
        assertTrue(Fx.call(() -> images.stream().allMatch(CheckBox::isSelected)), "every image is ticked at first");
        Fx.click(images.get(1));
        Fx.screenshot(w, "adapt-dialog");
        Fx.click(Fx.button(w, "OK"));
        AdaptDialog.Answer a = Fx.join(answer).orElseThrow();
        assertEquals("lab-b-v2", a.baseModel(), "starts from the active model");
        assertEquals(List.of(0, 2), a.images());
    }

    @Test
    void progressShowsThePhasesAndCancels() throws Exception {
        String title = "hubseg: adapting to this project";
        ProgressWindow progress = Fx.call(() -> new ProgressWindow(title, true));
        Fx.run(progress::show);
        Window w = Fx.titled(title);
        Thread poller = new Thread(() -> {
            progress.update(status(0, 1, "round 1/1 teacher: image 1/3 biopsy-01.svs"));
            progress.update(status(12, 40, "round 1/1 training: epoch 12/40"));
        }, "hubseg-test-poller");
        poller.start();
        poller.join();
        Fx.settle();
        Label phase = Fx.find(w, Label.class, l -> l.getText() != null && l.getText().startsWith("Phase"), "phase");
        assertTrue(Fx.call(phase::getText).startsWith("Phase 2 of 3: Training"), Fx.call(phase::getText));
        Fx.screenshot(w, "adapt-progress");
        Button cancel = Fx.button(w, "Cancel");
        Fx.click(cancel);
        assertTrue(progress.isCancelled());
        progress.close();
        Fx.closed(title);
    }

    private static JobStatus status(long done, long total, String message) {
        return JobStatus.fromJson(JsonParser.parseString("{\"id\": \"t1\", \"kind\": \"training\", \"state\": \"running\","
                + " \"progress\": {\"done\": " + done + ", \"total\": " + total + ", \"message\": \"" + message + "\"}}")
                .getAsJsonObject());
    }

    @Test
    void theSummaryShowsWhatWasLearnedAndOffersToActivate() {
        AdaptationSummary summary = new AdaptationSummary("lab-b-v2-selftrained-v3", 3, 41, 17, 0.22, 0.7731,
                "transferred from teacher", new AdaptationSummary.Safety("ok", List.of(), 2, 9, 0.89, 0.91, 1.0, 0.97));
        CompletableFuture<Boolean> activate = Fx.open(() -> AdaptDialog.summary(summary));
        Window w = Fx.titled("hubseg: adaptation finished");
        String text = Fx.call(() -> ((Label) ((DialogPane) w.getScene().getRoot()).getContent()).getText());
        assertTrue(text.contains("41 confident glomeruli") && text.contains("17 uncertain")
                && text.contains("22 % of the tissue") && text.contains("0.773"), text);
        Fx.screenshot(w, "adapt-summary");
        Fx.click(Fx.button(w, "Make it active and detect again"));
        assertTrue(Fx.join(activate));

        CompletableFuture<Boolean> keep = Fx.open(() -> AdaptDialog.summary(summary));
        Window again = Fx.titled("hubseg: adaptation finished");
        Fx.click(Fx.button(again, "Keep the current model"));
        assertFalse(Fx.join(keep));
    }

    @Test
    void aFlaggedModelIsSaidPlainlyAndKeepingTheCurrentOneIsTheDefault() {
        AdaptationSummary flagged = new AdaptationSummary("lab-b-v2-selftrained-v3", 3, 41, 17, 0.22, 0.7731,
                "transferred from teacher", new AdaptationSummary.Safety("flagged", List.of(
                "the student finds 25% of the teacher's 12 confident held-back objects (teacher 100%; bound: at most "
                        + "35% fewer)"), 4, 12, 0.25, 0.41, 1.0, 0.96));
        CompletableFuture<Boolean> pressEnter = Fx.open(() -> AdaptDialog.summary(flagged));
        Window w = Fx.titled("hubseg: adaptation finished");
        String header = Fx.call(() -> ((DialogPane) w.getScene().getRoot()).getHeaderText());
        String text = Fx.call(() -> ((Label) ((DialogPane) w.getScene().getRoot()).getContent()).getText());
        assertTrue(header.contains("FLAGGED") && text.contains("SAFETY CHECK FLAGGED")
                && text.contains("finds 25 % of the current model's 12 confident"), header + "\n" + text);
        assertTrue(Fx.all(w, Button.class, b -> "Make it active and detect again".equals(b.getText())).isEmpty(),
                "no plain offer to activate a flagged model");
        Button keep = Fx.button(w, "Keep the current model");
        Button anyway = Fx.button(w, "Make it active anyway...");
        assertTrue(Fx.call(keep::isDefaultButton) && !Fx.call(anyway::isDefaultButton), "Keep is the default");
        Fx.screenshot(w, "adapt-summary-flagged");
        Fx.key(w, KeyCode.ENTER);
        assertFalse(Fx.join(pressEnter), "Enter keeps the current model");

        // activating needs a second, explicit confirmation; its default (Cancel) keeps the current model
        CompletableFuture<Boolean> cancelled = Fx.open(() -> AdaptDialog.summary(flagged));
        Fx.click(Fx.button(Fx.titled("hubseg: adaptation finished"), "Make it active anyway..."));
        Window confirm = Fx.titled("hubseg: activate a flagged model?");
        assertTrue(Fx.call(() -> ((Button) Fx.button(confirm, "Cancel")).isDefaultButton()));
        Fx.click(Fx.button(confirm, "Cancel"));
        assertFalse(Fx.join(cancelled));

        CompletableFuture<Boolean> confirmed = Fx.open(() -> AdaptDialog.summary(flagged));
        Fx.click(Fx.button(Fx.titled("hubseg: adaptation finished"), "Make it active anyway..."));
        Fx.click(Fx.button(Fx.titled("hubseg: activate a flagged model?"), "Activate the flagged model"));
        assertTrue(Fx.join(confirmed));
    }
}
