package qupath.ext.hubseg;

import javafx.geometry.Insets;
import javafx.scene.control.ButtonType;
import javafx.scene.control.CheckBox;
import javafx.scene.control.ChoiceBox;
import javafx.scene.control.Dialog;
import javafx.scene.control.Label;
import javafx.scene.control.RadioButton;
import javafx.scene.control.Spinner;
import javafx.scene.control.ToggleGroup;
import javafx.scene.layout.GridPane;
import qupath.ext.hubseg.core.ModelInfo;
import qupath.ext.hubseg.core.TrainingRequest;

import java.util.List;
import java.util.Optional;

/** Asks for the training parameters (plain JavaFX dialog). */
final class TrainDialog {

    /**
     * What the dialog offers: the server's models, this project's exported label sets and how many unreviewed
     * images it has (images without an exported label set; self-training sends their paths, or uploads the pixels
     * of the {@code unreviewedNotLocal} ones that are not local files).
     */
    record Choices(List<ModelInfo> models, String activeModel, List<String> projectLabelSets, int unreviewedImages,
                   int unreviewedNotLocal) {
    }

    /** The request (without unlabelled images) and whether to self-train on the unreviewed images too. */
    record Answer(TrainingRequest request, boolean learnFromUnreviewed) {
    }

    private TrainDialog() {
    }

    static Optional<Answer> ask(Choices choices) {
        ChoiceBox<String> base = new ChoiceBox<>();
        choices.models().forEach(m -> base.getItems().add(m.name()));
        base.setValue(choices.activeModel() != null && base.getItems().contains(choices.activeModel())
                ? choices.activeModel() : base.getItems().isEmpty() ? null : base.getItems().get(0));

        ToggleGroup which = new ToggleGroup();
        RadioButton project = new RadioButton("This project's label sets (" + choices.projectLabelSets().size() + ")");
        RadioButton all = new RadioButton("All label sets stored on the server");
        project.setToggleGroup(which);
        all.setToggleGroup(which);
        project.setDisable(choices.projectLabelSets().isEmpty());
        (choices.projectLabelSets().isEmpty() ? all : project).setSelected(true);

        Spinner<Integer> epochs = new Spinner<>(1, 1000, 10);
        epochs.setEditable(true);
        // ticked by default: the server then derives the epochs from the data (fine-tunes: "auto"; self-training:
        // an iteration budget), which any fixed default would override
        CheckBox automaticEpochs = new CheckBox("Automatic (from the amount of data)");
        automaticEpochs.setSelected(true);
        epochs.disableProperty().bind(automaticEpochs.selectedProperty());
        CheckBox activate = new CheckBox("Make the new model active when training succeeds");
        int notLocal = choices.unreviewedNotLocal();
        CheckBox unreviewed = new CheckBox("Also learn from the unreviewed images of this project ("
                + choices.unreviewedImages() + (notLocal > 0 ? "; " + notLocal + " not local files, uploaded" : "")
                + ")");
        unreviewed.setDisable(choices.unreviewedImages() == 0);

        GridPane grid = new GridPane();
        grid.setHgap(8);
        grid.setVgap(8);
        grid.setPadding(new Insets(10));
        grid.addRow(0, new Label("Start from model"), base);
        grid.addRow(1, new Label("Train on"), project);
        grid.add(all, 1, 2);
        grid.addRow(3, new Label("Epochs"), automaticEpochs);
        grid.add(epochs, 1, 4);
        grid.add(unreviewed, 1, 5);
        grid.add(activate, 1, 6);

        Dialog<ButtonType> dialog = new Dialog<>();
        dialog.setTitle("hubseg: train new model");
        dialog.setHeaderText("Fine-tune a model on your exported, reviewed labels.\n"
                + "The result is registered as a new model version; the current one is kept.");
        dialog.getDialogPane().setContent(grid);
        dialog.getDialogPane().getButtonTypes().addAll(ButtonType.OK, ButtonType.CANCEL);
        dialog.initOwner(Ui.owner());
        Optional<ButtonType> answer = dialog.showAndWait();
        if (answer.isEmpty() || answer.get() != ButtonType.OK) {
            return Optional.empty();
        }
        boolean selfTrain = unreviewed.isSelected();
        // nothing exported from this project yet: self-train on its images alone rather than ask for "all" label sets
        List<String> ids = project.isSelected() || (selfTrain && choices.projectLabelSets().isEmpty())
                ? choices.projectLabelSets() : null;
        Integer epochCount = automaticEpochs.isSelected() ? null : epochs.getValue();
        return Optional.of(new Answer(new TrainingRequest(base.getValue(), ids,
                TrainingRequest.params(epochCount, null, null, null), activate.isSelected()), selfTrain));
    }
}
