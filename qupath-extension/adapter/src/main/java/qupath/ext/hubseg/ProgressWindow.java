package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.geometry.Insets;
import javafx.scene.Scene;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.ProgressBar;
import javafx.scene.layout.Region;
import javafx.scene.layout.VBox;
import javafx.stage.Modality;
import javafx.stage.Stage;
import qupath.ext.hubseg.core.AdaptationProgress;
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
    private final Label phase = new Label();
    private final AdaptationProgress phases;

    ProgressWindow(String title) {
        this(title, false);
    }

    /** With {@code showPhases}, a line above the bar says which phase of self-training runs, with an ETA. */
    ProgressWindow(String title, boolean showPhases) {
        phases = showPhases ? new AdaptationProgress() : null;
        Button cancel = new Button("Cancel");
        cancel.setOnAction(e -> {
            cancelled.set(true);
            cancel.setDisable(true);
            label.setText("Cancelling...");
        });
        bar.setPrefWidth(360);
        VBox box = showPhases ? new VBox(10, phase, label, bar, cancel) : new VBox(10, label, bar, cancel);
        phase.setStyle("-fx-font-weight: bold;");
        phase.setWrapText(true);
        phase.setMaxWidth(360);
        phase.setMinHeight(Region.USE_PREF_SIZE);
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
        String phaseText = phases == null ? null : phases.update(status.progress());
        Platform.runLater(() -> {
            if (phaseText != null) {
                phase.setText(phaseText);
            }
            if (!cancelled.get()) {
                label.setText(text);
            }
            bar.setProgress(fraction < 0 ? ProgressBar.INDETERMINATE_PROGRESS : fraction);
        });
    }
}
