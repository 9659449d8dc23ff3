package qupath.ext.hubseg;

import javafx.scene.control.DialogPane;
import javafx.scene.control.TextArea;
import javafx.stage.Window;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Server status and the error dialogs in real windows. Both ask the server in the background: a request on the
 * JavaFX thread would be refused by the client and end in an "Unexpected error" dialog instead of these.
 */
class ErrorAndStatusDialogsFxTest {

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    private static DialogPane pane(Window w) {
        return Fx.find(w, DialogPane.class, p -> true, "dialog pane");
    }

    private static Window alert(String header) {
        return Fx.window(w -> w.getScene().getRoot() instanceof DialogPane p && header.equals(p.getHeaderText()),
                "with header '" + header + "'");
    }

    @Test
    void serverStatusShowsTheServersHealthAndModels() throws Exception {
        try (FakeServer server = new FakeServer()) {
            Fx.run(() -> Ui.serverStatus(new HubsegClient(server.url(), "")));
            Window w = alert("hubseg server is running");
            String text = Fx.call(() -> pane(w).getContentText());
            assertTrue(text.contains("active model hubseg-pas-glomeruli-v1"), text);
            assertTrue(text.contains("lab-b-v2"), text);
            assertEquals(List.of("GET /v1/health", "GET /v1/models"), server.asked);
            Fx.screenshot(w, "server-status");
            Fx.click(Fx.button(w, "OK"));
        }
    }

    @Test
    void aServerThatIsNotRunningGetsTheCommandToStartIt() throws IOException {
        int port;
        try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = free.getLocalPort(); // closed again: nothing listens there
        }
        URI url = URI.create("http://127.0.0.1:" + port);
        Fx.run(() -> Ui.serverStatus(new HubsegClient(url, "")));
        Window w = Fx.window(w2 -> w2.getScene().getRoot() instanceof DialogPane p && p.getHeaderText() != null
                && p.getHeaderText().contains("not reachable"), "saying the server is not reachable");
        TextArea command = Fx.find(w, TextArea.class, t -> true, "command");
        String text = Fx.call(command::getText);
        assertTrue(text.contains("hubseg serve") && text.contains(Integer.toString(port)), text);
        Fx.screenshot(w, "error-server-unreachable");
        Fx.click(Fx.button(w, "OK"));
    }

    @Test
    void aRefusedRequestIsOneReadableSentence() {
        String reason = "Threshold must be between 0 and 1 (exclusive) or empty for the model's own, got 3.0.";
        Fx.run(() -> Ui.background(() -> {
            throw new HubsegException(reason);
        }, ignored -> { }));
        Window w = alert("Error");
        assertEquals(reason, Fx.call(() -> pane(w).getContentText()));
        Fx.screenshot(w, "error-dialog");
        Fx.click(Fx.button(w, "OK"));
    }

    @Test
    void aNetworkCallOnTheFxThreadIsRefused() throws Exception {
        try (FakeServer server = new FakeServer()) {
            HubsegClient client = new HubsegClient(server.url(), "");
            // what a handler that forgot Ui.quick would do: the client refuses, nothing reaches the server
            IllegalStateException refused = Fx.call(() -> {
                try {
                    client.models();
                    return null;
                } catch (IllegalStateException e) {
                    return e;
                }
            });
            assertTrue(refused != null && refused.getMessage().contains("JavaFX thread"), String.valueOf(refused));
            assertEquals(List.of(), server.asked);
        }
    }
}
