package qupath.ext.hubseg;

import javafx.geometry.Insets;
import javafx.scene.control.Button;
import javafx.scene.control.ButtonBar;
import javafx.scene.control.ButtonType;
import javafx.scene.control.CheckBox;
import javafx.scene.control.ChoiceBox;
import javafx.scene.control.Dialog;
import javafx.scene.control.Label;
import javafx.scene.control.ScrollPane;
import javafx.scene.layout.VBox;
import qupath.ext.hubseg.core.AdaptationSummary;
import qupath.ext.hubseg.core.ModelInfo;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Extensions > hubseg > Adapt to this project: which model to start from and which of the project's images to
 * learn from (all ticked), then, at the end, what self-training learned with the offer to make the new model
 * active and detect again. Plain JavaFX; {@link Commands} does the work.
 */
final class AdaptDialog {

    /** Activate the new model and run detection on the project again. */
    static final ButtonType ACTIVATE = new ButtonType("Make it active and detect again", ButtonBar.ButtonData.OK_DONE);
    /** Offered instead of {@link #ACTIVATE} when the safety check flagged the new model; asks once more. */
    static final ButtonType ACTIVATE_ANYWAY = new ButtonType("Make it active anyway...", ButtonBar.ButtonData.OTHER);
    static final ButtonType CONFIRM_ACTIVATE = new ButtonType("Activate the flagged model", ButtonBar.ButtonData.OTHER);
    static final ButtonType KEEP = new ButtonType("Keep the current model", ButtonBar.ButtonData.CANCEL_CLOSE);

    /** The server's models and the project's images ({@code notLocal}: how many are uploaded, not read by path). */
    record Choices(List<ModelInfo> models, String activeModel, List<String> images, int notLocal) {
    }

    /** The model to start from and the indices (into {@link Choices#images}) of the images to learn from. */
    record Answer(String baseModel, List<Integer> images) {
    }

    private AdaptDialog() {
    }

    static Optional<Answer> ask(Choices choices) {
        ChoiceBox<String> base = new ChoiceBox<>();
        choices.models().forEach(m -> base.getItems().add(m.name()));
        base.setValue(base.getItems().contains(choices.activeModel()) ? choices.activeModel()
                : base.getItems().isEmpty() ? null : base.getItems().get(0));
        List<CheckBox> boxes = new ArrayList<>();
        VBox list = new VBox(4);
        for (String name : choices.images()) {
            CheckBox box = new CheckBox(name);
            box.setSelected(true);
            boxes.add(box);
            list.getChildren().add(box);
        }
        ScrollPane scroll = new ScrollPane(list);
        scroll.setPrefViewportHeight(Math.min(200, 24.0 * Math.max(1, boxes.size())));
        scroll.setPrefViewportWidth(420);
        VBox content = new VBox(8, new Label("Start from model"), base,
                new Label("Learn from these images (" + choices.images().size() + " in the project"
                        + (choices.notLocal() > 0 ? "; " + choices.notLocal() + " not local files, uploaded" : "")
                        + "):"), scroll);
        content.setPadding(new Insets(10));

        Dialog<ButtonType> dialog = new Dialog<>();
        dialog.setTitle("hubseg: adapt to this project");
        dialog.setHeaderText("Teach the model this lab's slides, with no labels: the current model labels the images,\n"
                + "a new model learns from its confident objects and leaves the uncertain ones out.\n"
                + "The result is a new model version; the current one stays active until you choose.");
        dialog.getDialogPane().setContent(content);
        dialog.getDialogPane().getButtonTypes().addAll(ButtonType.OK, ButtonType.CANCEL);
        dialog.getDialogPane().lookupButton(ButtonType.OK).disableProperty().bind(base.valueProperty().isNull());
        dialog.initOwner(Ui.owner());
        Optional<ButtonType> button = dialog.showAndWait();
        List<Integer> chosen = new ArrayList<>();
        for (int i = 0; i < boxes.size(); i++) {
            if (boxes.get(i).isSelected()) {
                chosen.add(i);
            }
        }
        if (button.isEmpty() || button.get() != ButtonType.OK || chosen.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Answer(base.getValue(), chosen));
    }

    /**
     * Shows what was learned and the safety check; true when the user makes the new model active (and detects
     * again). When the check flagged the new model, keeping the current one is the default and activating asks
     * once more ({@link #confirmFlagged}).
     */
    static boolean summary(AdaptationSummary summary) {
        boolean flagged = !summary.safeToActivate();
        Dialog<ButtonType> dialog = new Dialog<>();
        dialog.setTitle("hubseg: adaptation finished");
        dialog.setHeaderText(flagged
                ? "Self-training finished, but the safety check FLAGGED the new model: on held-back images it disagrees\n"
                + "with the current model beyond the documented bounds. Keep the current model unless you have checked\n"
                + "the new model's detections."
                : "Self-training finished. Make the new model active and detect again on this project?\n"
                + "(Objects you reviewed are kept; unreviewed proposals are replaced.)");
        Label text = new Label(summary.describe());
        text.setPadding(new Insets(10));
        if (flagged) {
            text.setStyle("-fx-text-fill: #b00020;");
        }
        dialog.getDialogPane().setContent(text);
        dialog.getDialogPane().getButtonTypes().addAll(flagged ? ACTIVATE_ANYWAY : ACTIVATE, KEEP);
        // a deliberate click: Enter does not switch models; for a flagged model Enter keeps the current one
        ((Button) dialog.getDialogPane().lookupButton(flagged ? ACTIVATE_ANYWAY : ACTIVATE)).setDefaultButton(false);
        ((Button) dialog.getDialogPane().lookupButton(KEEP)).setDefaultButton(flagged);
        dialog.initOwner(Ui.owner());
        Optional<ButtonType> answer = dialog.showAndWait();
        if (answer.filter(ACTIVATE::equals).isPresent()) {
            return true;
        }
        return answer.filter(ACTIVATE_ANYWAY::equals).isPresent() && confirmFlagged(summary);
    }

    /** The extra confirmation before a flagged model becomes active; Cancel (the default) keeps the current one. */
    private static boolean confirmFlagged(AdaptationSummary summary) {
        Dialog<ButtonType> confirm = new Dialog<>();
        confirm.setTitle("hubseg: activate a flagged model?");
        confirm.setHeaderText("The safety check flagged " + summary.model() + ".\n"
                + "Activate it anyway and replace the unreviewed proposals of this project with its detections?");
        confirm.getDialogPane().getButtonTypes().addAll(CONFIRM_ACTIVATE, ButtonType.CANCEL);
        ((Button) confirm.getDialogPane().lookupButton(CONFIRM_ACTIVATE)).setDefaultButton(false);
        ((Button) confirm.getDialogPane().lookupButton(ButtonType.CANCEL)).setDefaultButton(true);
        confirm.initOwner(Ui.owner());
        return confirm.showAndWait().filter(CONFIRM_ACTIVATE::equals).isPresent();
    }
}
