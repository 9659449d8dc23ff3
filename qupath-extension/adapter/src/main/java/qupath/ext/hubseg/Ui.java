package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.scene.control.Alert;
import javafx.scene.control.ButtonType;
import javafx.scene.control.Label;
import javafx.scene.control.TextArea;
import javafx.scene.layout.VBox;
import javafx.stage.Window;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.ServerUnreachableException;

import java.util.concurrent.Callable;
import java.util.function.Consumer;

/**
 * Threading and error display, in plain JavaFX (no QuPath GUI object, so every dialog here opens in a test
 * window too). Network calls never run on the JavaFX thread ({@link Background}: long work on a "jobs" thread,
 * short requests on their own so they never wait behind a detection); results and errors come back on the
 * JavaFX thread. Every failure becomes one dialog with one readable sentence (see {@link Failures}) and one
 * log line.
 */
final class Ui {

    static final String TITLE = "hubseg";
    private static final Logger logger = LoggerFactory.getLogger(Ui.class);
    private static final Background BACKGROUND = new Background(Platform::runLater);

    private Ui() {
    }

    /** Runs long {@code work} on the jobs thread and hands its result to {@code onSuccess} on the JavaFX thread. */
    static <T> void background(Callable<T> work, Consumer<T> onSuccess) {
        BACKGROUND.job(work, onSuccess, Ui::showError);
    }

    /** Like {@link #background} for a short request, which must not queue behind a running job. */
    static <T> void quick(Callable<T> work, Consumer<T> onSuccess) {
        BACKGROUND.quick(work, onSuccess, Ui::showError);
    }

    /** Runs a command (or a callback on the JavaFX thread); any failure becomes one error dialog, never silence. */
    static void guarded(Runnable action) {
        try {
            action.run();
        } catch (RuntimeException | Error e) {
            showError(e);
        }
    }

    /** Shows any failure readably, with one log line (unexpected ones with their stack trace). */
    static void showError(Throwable t) {
        Failures.log(logger, t);
        if (t instanceof ServerUnreachableException unreachable) {
            showUnreachable(unreachable);
        } else {
            Alert alert = alert(Alert.AlertType.ERROR, "Error", Failures.message(t));
            alert.showAndWait();
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
        Alert alert = alert(Alert.AlertType.ERROR, intro, "");
        alert.getDialogPane().setContent(new VBox(8, new Label("Start it in a terminal with:"), command, after));
        alert.showAndWait();
    }

    /** A plain information dialog (standard JavaFX, so it looks the same in QuPath 0.6 and 0.7). */
    static void info(String header, String text) {
        alert(Alert.AlertType.INFORMATION, header, text).showAndWait();
    }

    /** Server status: the server's diagnostics, asked off the JavaFX thread, shown in an information dialog. */
    static void serverStatus(HubsegClient client) {
        quick(client::diagnostics, text -> info("hubseg server is running", text));
    }

    private static Alert alert(Alert.AlertType type, String header, String text) {
        Alert alert = new Alert(type, text, ButtonType.OK);
        alert.setTitle(TITLE);
        alert.setHeaderText(header);
        alert.initOwner(owner());
        return alert;
    }

    /**
     * The window dialogs belong to: the focused window (QuPath's main window, or the hubseg window the user is
     * in), else none. Found through JavaFX itself, so the same code runs in QuPath and in a test stage.
     */
    static Window owner() {
        for (Window w : Window.getWindows()) {
            if (w.isFocused() && w.isShowing()) {
                return w;
            }
        }
        return null;
    }
}
