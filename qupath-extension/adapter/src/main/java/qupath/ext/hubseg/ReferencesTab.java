package qupath.ext.hubseg;

import javafx.beans.property.SimpleStringProperty;
import javafx.geometry.Insets;
import javafx.scene.control.Label;
import javafx.scene.control.ScrollPane;
import javafx.scene.control.Tab;
import javafx.scene.control.TableColumn;
import javafx.scene.control.TableView;
import javafx.scene.control.Tooltip;
import javafx.scene.image.Image;
import javafx.scene.image.ImageView;
import javafx.scene.layout.FlowPane;
import javafx.scene.layout.VBox;
import qupath.ext.hubseg.core.ModelReference;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;

import java.io.ByteArrayInputStream;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The review panel's References tab: the image's reference objects (the detection's most certain, by
 * {@code hubseg reference rank}; a click centres the viewer on one through {@link ReviewPanel.Source#focus}) and,
 * where the image has fewer than the user asked for, thumbnails of the model card's reference crops, fetched in the
 * background ({@link ReviewPanel.Source#cardReferences} uses the network).
 */
final class ReferencesTab {

    /** Thumbnails are shown at most this many pixels wide and high. */
    static final double THUMBNAIL_PX = 120;

    private final ReviewPanel.Source source;
    private final TableView<ReviewItem> table = new TableView<>();
    private final Label status = new Label();
    private final FlowPane thumbnails = new FlowPane(8, 8);
    private final Tab tab;
    private boolean cardRequested;
    private String shortfall = "";

    ReferencesTab(ReviewPanel.Source source) {
        this.source = source;
        table.getColumns().add(column("Reference", item -> Long.toString(item.referenceRank())));
        table.getColumns().add(column("Class", ReviewItem::className));
        table.getColumns().add(column("Review score", item -> ReviewPanel.format(item.reviewScore())));
        table.getColumns().add(column("Energy", item -> ReviewPanel.format(item.energy())));
        table.getColumns().add(column("Area µm²", item -> ReviewPanel.format(item.areaUm2())));
        table.setId("references");
        table.setPrefHeight(170);
        table.setPlaceholder(new Label("No reference objects on this image: detect again with "
                + "'Reference objects per image' above 0 (hubseg settings)."));
        table.getSelectionModel().selectedItemProperty().addListener((v, o, item) -> {
            if (item != null) {
                Ui.guarded(() -> source.focus(item.id()));
            }
        });
        status.setWrapText(true);
        ScrollPane scroll = new ScrollPane(thumbnails);
        scroll.setFitToWidth(true);
        VBox content = new VBox(6, table, status, scroll);
        content.setPadding(new Insets(6));
        tab = new Tab("References", content);
        tab.setClosable(false);
    }

    Tab tab() {
        return tab;
    }

    /** Shows the queue's reference objects; asks for the card's crops (once) when there are fewer than wanted. */
    void show(ReviewQueue queue) {
        List<ReviewItem> references = queue.items().stream().filter(ReviewItem::isReference)
                .sorted(Comparator.comparingLong(ReviewItem::referenceRank)).toList();
        table.getItems().setAll(references);
        int wanted = source.wantedReferences();
        if (references.size() >= wanted || wanted == 0) {
            status.setText(references.size() + " reference object(s) on this image: the detection's most certain "
                    + "glomeruli. Click one to show it.");
            return;
        }
        shortfall = references.size() + " of " + wanted + " reference objects on this image; from the model card: ";
        status.setText(shortfall + (cardRequested ? thumbnails.getChildren().size() + " crop(s)" : "loading..."));
        if (!cardRequested) {
            cardRequested = true;
            Ui.quick(source::cardReferences, this::showCrops); // network: never on the JavaFX thread
        }
    }

    private void showCrops(List<ReviewPanel.Crop> crops) {
        thumbnails.getChildren().clear();
        for (ReviewPanel.Crop crop : crops) {
            Image image = new Image(new ByteArrayInputStream(crop.image()));
            if (image.isError()) {
                continue; // an unreadable crop is left out rather than shown broken
            }
            ImageView view = new ImageView(image);
            view.setFitWidth(THUMBNAIL_PX);
            view.setFitHeight(THUMBNAIL_PX);
            view.setPreserveRatio(true);
            Label label = new Label(caption(crop.reference()), view);
            label.setContentDisplay(javafx.scene.control.ContentDisplay.TOP);
            label.setUserData(crop.reference());
            Tooltip.install(label, new Tooltip(crop.reference().image().isEmpty() ? crop.reference().model()
                    : crop.reference().image()));
            thumbnails.getChildren().add(label);
        }
        status.setText(shortfall + (crops.isEmpty() ? "none (the card lists no reference crops)"
                : thumbnails.getChildren().size() + " crop(s) of the training data's most certain glomeruli ("
                + crops.get(0).reference().model() + ")"));
    }

    private static String caption(ModelReference reference) {
        return Double.isNaN(reference.areaUm2()) ? "#" + reference.index()
                : String.format(Locale.ROOT, "#%d  %.0f µm²", reference.index(), reference.areaUm2());
    }

    /** Thumbnails shown (for the dialog tests). */
    List<ModelReference> shownCrops() {
        return thumbnails.getChildren().stream().map(n -> (ModelReference) n.getUserData()).toList();
    }

    private static TableColumn<ReviewItem, String> column(String title, Function<ReviewItem, String> value) {
        TableColumn<ReviewItem, String> column = new TableColumn<>(title);
        column.setCellValueFactory(cell -> new SimpleStringProperty(value.apply(cell.getValue())));
        column.setSortable(false);
        return column;
    }
}
