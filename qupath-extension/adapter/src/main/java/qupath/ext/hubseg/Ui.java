package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.scene.control.Alert;
import javafx.scene.control.ButtonType;
import javafx.scene.control.Label;
import javafx.scene.control.TextArea;
import javafx.scene.layout.VBox;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.ServerUnreachableException;
import qupath.fx.dialogs.Dialogs;
import qupath.lib.common.ThreadTools;
import qupath.lib.gui.QuPathGUI;

import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;

/**
 * Threading and error display. Network calls run on one background thread, never on the JavaFX thread;
 * results and errors come back on the JavaFX thread. Errors are shown as the one sentence the core made
 * (server message, or "not reachable at URL" with the exact {@code hubseg serve} command), never as a trace.
 */
final class Ui {

    static final String TITLE = "hubseg";
    private static final Logger logger = LoggerFactory.getLogger(Ui.class);
    // qupath.lib.common.ThreadTools.createThreadFactory(String, boolean): daemon threads, as QuPath's extensions use
    private static final ExecutorService POOL = Executors.newSingleThreadExecutor(
            ThreadTools.createThreadFactory("hubseg", true));

    private Ui() {
    }

    /** Runs {@code work} in the background and hands its result to {@code onSuccess} on the JavaFX thread. */
    static <T> void background(Callable<T> work, Consumer<T> onSuccess) {
        POOL.submit(() -> {
            try {
                T result = work.call();
                Platform.runLater(() -> onSuccess.accept(result));
            } catch (Throwable t) {
                Platform.runLater(() -> showError(t));
            }
        });
    }

    /** Shows any failure readably; unexpected ones are also logged with their stack trace. */
    static void showError(Throwable t) {
        if (t instanceof ServerUnreachableException unreachable) {
            showUnreachable(unreachable);
        } else if (t instanceof HubsegException e) {
            Dialogs.showErrorMessage(TITLE, e.getMessage());
        } else {
            logger.error("hubseg: unexpected error", t);
            Dialogs.showErrorMessage(TITLE, "Unexpected error: " + t + "\nSee View > Show log for details.");
        }
    }

    /** The server-not-running dialog, with the command in a text field the user can copy. */
    static void showUnreachable(ServerUnreachableException e) {
        String message = e.getMessage();
        String intro = message.substring(0, message.indexOf('\n') > 0 ? message.indexOf('\n') : message.length());
        TextArea command = new TextArea(e.serveCommand());
        command.setEditable(false);
        command.setPrefRowCount(1);
        Label after = new Label("Then try again. If the server runs on another computer, set its URL in\n"
                + "Extensions > hubseg > Settings.");
        Alert alert = new Alert(Alert.AlertType.ERROR, "", ButtonType.OK);
        alert.setTitle(TITLE);
        alert.setHeaderText(intro);
        alert.getDialogPane().setContent(new VBox(8, new Label("Start it in a terminal with:"), command, after));
        alert.initOwner(QuPathGUI.getInstance() == null ? null : QuPathGUI.getInstance().getStage());
        alert.showAndWait();
    }

    /** A plain information dialog (standard JavaFX, so it looks the same in QuPath 0.6 and 0.7). */
    static void info(String header, String text) {
        Alert alert = new Alert(Alert.AlertType.INFORMATION, text, ButtonType.OK);
        alert.setTitle(TITLE);
        alert.setHeaderText(header);
        alert.initOwner(QuPathGUI.getInstance() == null ? null : QuPathGUI.getInstance().getStage());
        alert.showAndWait();
    }
}
