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

    /** Shows what was learned; true when the user makes the new model active (and detects again). */
    static boolean summary(AdaptationSummary summary) {
        Dialog<ButtonType> dialog = new Dialog<>();
        dialog.setTitle("hubseg: adaptation finished");
        dialog.setHeaderText("Self-training finished. Make the new model active and detect again on this project?\n"
                + "(Objects you reviewed are kept; unreviewed proposals are replaced.)");
        Label text = new Label(summary.describe());
        text.setPadding(new Insets(10));
        dialog.getDialogPane().setContent(text);
        dialog.getDialogPane().getButtonTypes().addAll(ACTIVATE, KEEP);
        // a deliberate click: Enter does not switch models
        ((Button) dialog.getDialogPane().lookupButton(ACTIVATE)).setDefaultButton(false);
        dialog.initOwner(Ui.owner());
        return dialog.showAndWait().filter(ACTIVATE::equals).isPresent();
    }
}
