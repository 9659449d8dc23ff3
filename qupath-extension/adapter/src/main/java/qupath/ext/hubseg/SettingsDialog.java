package qupath.ext.hubseg;

import javafx.event.ActionEvent;
import javafx.geometry.Insets;
import javafx.scene.control.Button;
import javafx.scene.control.ButtonType;
import javafx.scene.control.CheckBox;
import javafx.scene.control.ChoiceBox;
import javafx.scene.control.ComboBox;
import javafx.scene.control.Dialog;
import javafx.scene.control.Label;
import javafx.scene.control.PasswordField;
import javafx.scene.control.TextField;
import javafx.scene.layout.GridPane;
import javafx.scene.layout.HBox;
import javafx.scene.layout.Region;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.ModelInfo;
import qupath.ext.hubseg.core.RejectBehaviour;

import java.util.Optional;

/**
 * Edits the settings. OK is refused while a field is invalid (the reason is shown in the dialog, which stays open):
 * a URL that is not http(s), a threshold outside (0, 1), an empty token for a server on another computer.
 * The caller stores the answer ({@link HubsegPreferences} in QuPath).
 */
final class SettingsDialog {

    private static final String ACTIVE = "(server's active model)";

    private SettingsDialog() {
    }

    /** Shows the dialog; the new, validated settings, or empty when the user cancels. */
    static Optional<HubsegSettings> ask(HubsegSettings current) {
        Form form = new Form(current);
        Label problem = new Label();
        problem.setId("problem");
        problem.setStyle("-fx-text-fill: #b00020;");
        problem.setWrapText(true);
        problem.setMaxWidth(620);
        problem.setMinHeight(Region.USE_PREF_SIZE); // the whole reason, wrapped, never cut to "..."

        Dialog<ButtonType> dialog = new Dialog<>();
        dialog.setTitle("hubseg settings");
        dialog.setHeaderText("Reject: DELETE removes the object; KEEP_AS_REJECTED keeps it as class 'Rejected'\n"
                + "so it is exported as a negative example for training.");
        dialog.getDialogPane().setContent(form.grid(problem));
        dialog.getDialogPane().getButtonTypes().addAll(ButtonType.OK, ButtonType.CANCEL);
        dialog.initOwner(Ui.owner());
        HubsegSettings[] answer = new HubsegSettings[1];
        dialog.getDialogPane().lookupButton(ButtonType.OK).addEventFilter(ActionEvent.ACTION, e -> {
            try {
                answer[0] = form.read();
            } catch (HubsegException ex) {
                problem.setText(ex.getMessage());
                e.consume(); // keeps the dialog open with the reason shown
            }
        });
        Optional<ButtonType> button = dialog.showAndWait();
        return button.isPresent() && button.get() == ButtonType.OK ? Optional.ofNullable(answer[0]) : Optional.empty();
    }

    /** The dialog's fields, filled from the current settings. */
    private static final class Form {
        final TextField url;
        final PasswordField token = new PasswordField();
        final ComboBox<String> model = new ComboBox<>();
        final Button load = new Button("Load models");
        final ChoiceBox<String> tta = new ChoiceBox<>();
        final TextField threshold;
        final TextField references;
        final ChoiceBox<String> objectType = new ChoiceBox<>();
        final ChoiceBox<RejectBehaviour> reject = new ChoiceBox<>();
        final CheckBox upload = new CheckBox("Always send pixels (the server cannot read my image files)");
        final CheckBox hideUncertain = new CheckBox("Hide uncertain objects (class '" + HubsegObjects.CLASS_UNCERTAIN
                + "': hidden in the viewer and the review list, never deleted)");

        Form(HubsegSettings current) {
            url = new TextField(current.serverUrl());
            url.setPrefColumnCount(28);
            token.setText(current.token());
            model.setEditable(true);
            model.getItems().add(ACTIVE);
            model.setValue(current.model().isEmpty() ? ACTIVE : current.model());
            // the request runs in the background: never on the JavaFX thread
            load.setOnAction(e -> Ui.quick(() -> new HubsegClient(
                            HubsegSettings.defaults().withServerUrl(url.getText()).serverUri(), token.getText()).models(),
                    models -> {
                        String keep = model.getValue();
                        model.getItems().setAll(ACTIVE);
                        models.stream().map(ModelInfo::name).forEach(model.getItems()::add);
                        model.setValue(keep);
                    }));
            tta.getItems().addAll(HubsegSettings.TTA_CHOICES);
            tta.setValue(current.tta());
            threshold = new TextField(current.threshold() == null ? "" : current.threshold().toString());
            threshold.setPromptText("model default");
            references = new TextField(Integer.toString(current.references()));
            references.setPrefColumnCount(4);
            objectType.getItems().addAll(HubsegSettings.OBJECT_TYPES);
            objectType.setValue(current.objectType());
            reject.getItems().addAll(RejectBehaviour.values());
            reject.setValue(current.rejectBehaviour());
            upload.setSelected(current.alwaysUpload());
            hideUncertain.setSelected(current.hideUncertain());
        }

        GridPane grid(Label problem) {
            GridPane grid = new GridPane();
            grid.setHgap(8);
            grid.setVgap(8);
            grid.setPadding(new Insets(10));
            int row = 0;
            grid.addRow(row++, new Label("Server URL"), url);
            grid.addRow(row++, new Label("Access token"), token);
            grid.addRow(row++, new Label("Model"), new HBox(6, model, load));
            grid.addRow(row++, new Label("Test-time augmentation"), tta);
            grid.addRow(row++, new Label("Threshold (0-1)"), threshold);
            grid.addRow(row++, new Label("Create objects as"), objectType);
            grid.addRow(row++, new Label("Reference objects per image"), references);
            grid.addRow(row++, new Label("Reject"), reject);
            grid.add(upload, 1, row++);
            grid.add(hideUncertain, 1, row++);
            grid.add(problem, 0, row, 2, 1);
            return grid;
        }

        /** The settings as entered, validated; a {@link HubsegException} names the field that is wrong. */
        HubsegSettings read() {
            Double thresholdValue = null;
            if (!threshold.getText().isBlank()) {
                try {
                    thresholdValue = Double.parseDouble(threshold.getText().strip());
                } catch (NumberFormatException e) {
                    throw new HubsegException("Threshold must be a number between 0 and 1, or empty for the model's own.");
                }
            }
            String modelName = model.getValue() == null || ACTIVE.equals(model.getValue()) ? "" : model.getValue();
            return new HubsegSettings(url.getText(), token.getText(), modelName, tta.getValue(), thresholdValue,
                    objectType.getValue(), reject.getValue(), upload.isSelected(), hideUncertain.isSelected(),
                    HubsegSettings.parseReferences(references.getText())).validate();
        }
    }
}
