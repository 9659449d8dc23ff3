package qupath.ext.hubseg;

import com.google.gson.JsonParser;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.ProgressBar;
import javafx.stage.Window;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.JobStatus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The progress window in a real window: updates from a polling thread, and Cancel. */
class ProgressWindowFxTest {

    private static final String TITLE = "hubseg: detecting glomeruli";

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    private static JobStatus running(int done, int total) {
        return JobStatus.fromJson(JsonParser.parseString("{\"id\": \"j1\", \"kind\": \"detection\", \"state\": \"running\","
                + " \"progress\": {\"done\": " + done + ", \"total\": " + total + ", \"message\": \"tiles\"}}")
                .getAsJsonObject());
    }

    @Test
    void updatesFromAnotherThreadShowAndCancelSetsTheFlag() throws Exception {
        ProgressWindow progress = Fx.call(() -> new ProgressWindow(TITLE));
        Fx.run(progress::show);
        Window w = Fx.titled(TITLE);
        Thread poller = new Thread(() -> progress.update(running(12, 48)), "hubseg-test-poller");
        poller.start();
        poller.join();
        Fx.settle();
        ProgressBar bar = Fx.find(w, ProgressBar.class, b -> true, "bar");
        assertEquals(0.25, Fx.call(bar::getProgress), 1e-9);
        Label label = Fx.find(w, Label.class, l -> true, "status");
        String text = Fx.call(label::getText);
        assertTrue(text.startsWith("running"), text);
        Fx.screenshot(w, "progress-window");

        assertFalse(progress.isCancelled());
        Button cancel = Fx.button(w, "Cancel");
        Fx.click(cancel);
        assertTrue(progress.isCancelled(), "Cancel sets the flag the polling thread forwards to the server");
        assertTrue(Fx.call(cancel::isDisabled));
        assertEquals("Cancelling...", Fx.call(label::getText));
        progress.update(running(13, 48)); // a late update does not hide that cancelling is under way
        Fx.settle();
        assertEquals("Cancelling...", Fx.call(label::getText));
        progress.close();
        Fx.closed(TITLE);
    }
}
