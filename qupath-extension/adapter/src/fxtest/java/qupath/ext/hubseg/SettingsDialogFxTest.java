package qupath.ext.hubseg;

import javafx.scene.control.ComboBox;
import javafx.scene.control.Label;
import javafx.scene.control.PasswordField;
import javafx.scene.control.TextField;
import javafx.stage.Window;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.HubsegSettings;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Settings dialog in a real window: bad input is refused with the reason, Load models asks the server. */
class SettingsDialogFxTest {

    private static final String TITLE = "hubseg settings";

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    private static TextField url(Window w) {
        return Fx.find(w, TextField.class, f -> !(f instanceof PasswordField) && f.getText() != null
                && f.getText().startsWith("http") || f.getText() != null && f.getText().contains("//"), "URL field");
    }

    private static String problem(Window w) {
        Label label = Fx.find(w, Label.class, l -> "problem".equals(l.getId()), "problem");
        return Fx.call(label::getText);
    }

    @Test
    void aBadUrlIsRefusedWithTheReasonAndTheDialogStaysOpen() {
        CompletableFuture<Optional<HubsegSettings>> answer = Fx.open(() -> SettingsDialog.ask(HubsegSettings.defaults()));
        Window w = Fx.titled(TITLE);
        TextField url = url(w);
        Fx.run(() -> url.setText("127.0.0.1 port 8765"));
        Fx.click(Fx.button(w, "OK"));
        assertTrue(Fx.showing(TITLE), "OK with a bad URL must not close the dialog");
        assertTrue(problem(w).contains("server URL"), problem(w));
        Fx.screenshot(w, "settings-bad-url");

        Fx.run(() -> url.setText("http://localhost:9000"));
        Fx.click(Fx.button(w, "OK"));
        Optional<HubsegSettings> chosen = Fx.join(answer);
        assertEquals("http://localhost:9000", chosen.orElseThrow().serverUrl());
        Fx.closed(TITLE);
    }

    @Test
    void anEmptyTokenForAServerOnAnotherComputerIsRefused() {
        CompletableFuture<Optional<HubsegSettings>> answer = Fx.open(() -> SettingsDialog.ask(HubsegSettings.defaults()));
        Window w = Fx.titled(TITLE);
        Fx.run(() -> url(w).setText("https://hubseg.lab.example:8765"));
        Fx.click(Fx.button(w, "OK"));
        assertTrue(Fx.showing(TITLE));
        assertTrue(problem(w).contains("Access token is empty"), problem(w));
        Fx.screenshot(w, "settings-empty-token");

        PasswordField token = Fx.find(w, PasswordField.class, f -> true, "token field");
        Fx.click(token);
        Fx.run(() -> token.setText("s3cret-token-from-the-lab"));
        Fx.click(Fx.button(w, "OK"));
        HubsegSettings chosen = Fx.join(answer).orElseThrow();
        assertEquals("s3cret-token-from-the-lab", chosen.token());
    }

    @Test
    void cancelKeepsNothing() {
        CompletableFuture<Optional<HubsegSettings>> answer = Fx.open(() -> SettingsDialog.ask(HubsegSettings.defaults()));
        Window w = Fx.titled(TITLE);
        Fx.click(Fx.button(w, "Cancel"));
        assertFalse(Fx.join(answer).isPresent());
    }

    @Test
    void loadModelsAsksTheServerOffTheFxThreadAndListsItsModels() throws Exception {
        try (FakeServer server = new FakeServer()) {
            HubsegSettings current = HubsegSettings.defaults().withServerUrl(server.url().toString());
            CompletableFuture<Optional<HubsegSettings>> answer = Fx.open(() -> SettingsDialog.ask(current));
            Window w = Fx.titled(TITLE);
            @SuppressWarnings("unchecked")
            ComboBox<String> models = Fx.find(w, ComboBox.class, c -> true, "model list");
            Fx.click(Fx.button(w, "Load models"));
            long end = System.nanoTime() + Fx.TIMEOUT_S * 1_000_000_000L;
            while (Fx.call(() -> models.getItems().size()) < 3 && System.nanoTime() < end) {
                Fx.pause(50);
            }
            // a request on the JavaFX thread would have been refused by the client and shown as an error instead
            assertEquals(List.of("GET /v1/models"), server.asked);
            assertEquals(List.of("(server's active model)", "hubseg-pas-glomeruli-v1", "lab-b-v2"),
                    Fx.call(() -> List.copyOf(models.getItems())));
            Fx.run(() -> models.setValue("lab-b-v2"));
            Fx.screenshot(w, "settings");
            Fx.click(Fx.button(w, "OK"));
            assertEquals("lab-b-v2", Fx.join(answer).orElseThrow().model());
        }
    }
}
