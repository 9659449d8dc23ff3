package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.geometry.Insets;
import javafx.scene.Scene;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.ProgressBar;
import javafx.scene.layout.VBox;
import javafx.stage.Modality;
import javafx.stage.Stage;
import qupath.ext.hubseg.core.JobListener;
import qupath.ext.hubseg.core.JobStatus;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A small window showing a job's progress (tiles done/total, or epoch/loss/Dice for training) with Cancel.
 * Updates may come from any thread. Cancel only sets a flag; the polling thread forwards it to the server.
 */
final class ProgressWindow implements JobListener {

    private final Stage stage = new Stage();
    private final Label label = new Label("Waiting for the server...");
    private final ProgressBar bar = new ProgressBar(-1);
    private final AtomicBoolean cancelled = new AtomicBoolean();

    ProgressWindow(String title) {
        Button cancel = new Button("Cancel");
        cancel.setOnAction(e -> {
            cancelled.set(true);
            cancel.setDisable(true);
            label.setText("Cancelling...");
        });
        bar.setPrefWidth(360);
        VBox box = new VBox(10, label, bar, cancel);
        box.setPadding(new Insets(12));
        stage.setTitle(title);
        stage.setScene(new Scene(box));
        stage.initModality(Modality.NONE);
        stage.initOwner(Ui.owner());
        stage.setOnCloseRequest(e -> cancelled.set(true));
    }

    void show() {
        stage.show();
    }

    void close() {
        Platform.runLater(stage::close);
    }

    boolean isCancelled() {
        return cancelled.get();
    }

    /** Shows a free-text step, e.g. "Region 2 of 3: uploading". */
    void message(String text) {
        Platform.runLater(() -> label.setText(text));
    }

    @Override
    public void update(JobStatus status) {
        String text = status.state().wireName() + (status.progress().describe().isEmpty() ? ""
                : ": " + status.progress().describe());
        double fraction = status.progress().fraction();
        Platform.runLater(() -> {
            if (!cancelled.get()) {
                label.setText(text);
            }
            bar.setProgress(fraction < 0 ? ProgressBar.INDETERMINATE_PROGRESS : fraction);
        });
    }
}
