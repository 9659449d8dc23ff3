package qupath.ext.hubseg;

import javafx.scene.control.CheckBox;
import javafx.scene.control.Spinner;
import javafx.stage.Window;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.ModelInfo;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Train dialog in a real window: Automatic epochs, and what the answer asks the server for. */
class TrainDialogFxTest {

    private static final String TITLE = "hubseg: train new model";
    private static final TrainDialog.Choices CHOICES = new TrainDialog.Choices(
            List.of(model("hubseg-pas-glomeruli-v1"), model("lab-b-v2")), "hubseg-pas-glomeruli-v1",
            List.of("ls-1", "ls-2"), 3, 1);

    private static ModelInfo model(String name) {
        return new ModelInfo(name, "unet", 1, 1.0, 256, 0.5, "Glomerulus", false, new com.google.gson.JsonObject());
    }

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    private static CheckBox box(Window w, String startsWith) {
        return Fx.find(w, CheckBox.class, c -> c.getText().startsWith(startsWith), "'" + startsWith + "...'");
    }

    @Test
    void automaticEpochsIsTheDefaultAndLeavesTheEpochsToTheServer() {
        CompletableFuture<Optional<TrainDialog.Answer>> answer = Fx.open(() -> TrainDialog.ask(CHOICES));
        Window w = Fx.titled(TITLE);
        Spinner<?> epochs = Fx.find(w, Spinner.class, s -> true, "epochs");
        assertTrue(Fx.call(() -> box(w, "Automatic").isSelected()));
        assertTrue(Fx.call(epochs::isDisabled), "a fixed epoch count is not offered while Automatic is ticked");
        assertTrue(Fx.call(() -> box(w, "Also learn from the unreviewed images").getText())
                .contains("3; 1 not local files, uploaded"));
        Fx.screenshot(w, "train-dialog");
        Fx.click(Fx.button(w, "OK"));
        TrainDialog.Answer a = Fx.join(answer).orElseThrow();
        assertFalse(a.request().params().has("epochs"), a.request().params().toString());
        assertEquals(List.of("ls-1", "ls-2"), a.request().labelSetIds());
        assertEquals("hubseg-pas-glomeruli-v1", a.request().baseModel());
        assertFalse(a.learnFromUnreviewed());
    }

    @Test
    void untickingAutomaticSendsTheChosenEpochs() {
        CompletableFuture<Optional<TrainDialog.Answer>> answer = Fx.open(() -> TrainDialog.ask(CHOICES));
        Window w = Fx.titled(TITLE);
        Fx.click(box(w, "Automatic"));
        Spinner<?> epochs = Fx.find(w, Spinner.class, s -> true, "epochs");
        assertFalse(Fx.call(epochs::isDisabled));
        Fx.run(() -> epochs.getEditor().setText("25"));
        Fx.run(epochs::commitValue);
        Fx.click(box(w, "Also learn from the unreviewed images"));
        Fx.click(Fx.button(w, "OK"));
        TrainDialog.Answer a = Fx.join(answer).orElseThrow();
        assertEquals(25, a.request().params().get("epochs").getAsInt());
        assertTrue(a.learnFromUnreviewed());
    }
}
