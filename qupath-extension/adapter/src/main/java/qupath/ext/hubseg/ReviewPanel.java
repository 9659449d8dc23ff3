package qupath.ext.hubseg;

import javafx.beans.property.SimpleStringProperty;
import javafx.geometry.Insets;
import javafx.scene.Scene;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.TableColumn;
import javafx.scene.control.TableView;
import javafx.scene.input.KeyCode;
import javafx.scene.layout.BorderPane;
import javafx.scene.layout.HBox;
import javafx.stage.Stage;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.RejectBehaviour;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;

import java.awt.image.BufferedImage;
import java.util.Locale;
import java.util.function.Function;

/**
 * Non-modal review panel: hubseg objects most-uncertain first, with Accept (A), Reject (R) and Next (N).
 * Selecting a row selects the object and centres the viewer on it. Decisions are written to the objects'
 * metadata at once ({@code hubseg.review}, by {@link ReviewSession}), so they survive closing the panel and are
 * saved with the project.
 */
final class ReviewPanel {

    private static ReviewPanel open;

    private final QuPathGUI qupath;
    private final ImageData<BufferedImage> imageData;
    private final ReviewSession session;
    private final Stage stage = new Stage();
    private final TableView<ReviewItem> table = new TableView<>();
    private final Label counter = new Label();
    private ReviewQueue queue;

    static void show(QuPathGUI qupath, ImageData<BufferedImage> imageData, RejectBehaviour rejectBehaviour) {
        if (open != null && open.imageData == imageData && open.stage.isShowing()) {
            open.rebuild();
            open.stage.toFront();
            return;
        }
        if (open != null) {
            open.stage.close();
        }
        open = new ReviewPanel(qupath, imageData, rejectBehaviour);
        open.stage.show();
    }

    private ReviewPanel(QuPathGUI qupath, ImageData<BufferedImage> imageData, RejectBehaviour rejectBehaviour) {
        this.qupath = qupath;
        this.imageData = imageData;
        this.session = new ReviewSession(imageData, rejectBehaviour, hideUncertain());

        table.getColumns().add(column("State", item -> queue.state(item.id()).metadataValue()));
        table.getColumns().add(column("Class", ReviewItem::className));
        table.getColumns().add(column("Review score", item -> format(item.reviewScore())));
        table.getColumns().add(column("Energy", item -> format(item.energy())));
        table.getColumns().add(column("Probability", item -> format(item.probability())));
        table.getColumns().add(column("Area µm²", item -> format(item.areaUm2())));
        table.getColumns().add(column("Rank", item -> item.rank() == Long.MAX_VALUE ? "" : Long.toString(item.rank())));
        table.getSelectionModel().selectedItemProperty().addListener((v, o, item) -> {
            if (item != null) {
                Ui.guarded(() -> focus(item));
            }
        });

        Button accept = new Button("Accept (A)");
        accept.setOnAction(e -> Ui.guarded(() -> decide(ReviewState.ACCEPTED)));
        Button reject = new Button("Reject (R)");
        reject.setOnAction(e -> Ui.guarded(() -> decide(ReviewState.REJECTED)));
        Button next = new Button("Next (N)");
        next.setOnAction(e -> Ui.guarded(this::next));
        Button refresh = new Button("Refresh");
        refresh.setOnAction(e -> Ui.guarded(this::rebuild));
        HBox buttons = new HBox(8, accept, reject, next, refresh, counter);
        buttons.setPadding(new Insets(8));

        BorderPane pane = new BorderPane(table);
        pane.setBottom(buttons);
        Scene scene = new Scene(pane, 620, 420);
        scene.setOnKeyPressed(e -> {
            if (e.getCode() == KeyCode.A) {
                Ui.guarded(() -> decide(ReviewState.ACCEPTED));
            } else if (e.getCode() == KeyCode.R) {
                Ui.guarded(() -> decide(ReviewState.REJECTED));
            } else if (e.getCode() == KeyCode.N) {
                Ui.guarded(this::next);
            } else {
                return;
            }
            e.consume();
        });
        stage.setTitle("hubseg: review uncertain objects");
        stage.setScene(scene);
        stage.initOwner(qupath.getStage());
        showQueue(session.queue());
    }

    /** Reads the hubseg objects and their states from the image again. */
    private void rebuild() {
        showQueue(session.rebuild(hideUncertain()));
    }

    private void showQueue(ReviewQueue reviewQueue) {
        queue = reviewQueue;
        table.getItems().setAll(queue.items());
        counter.setText(queue.counterText());
        if (queue.next() != null) {
            table.getSelectionModel().select(queue.current());
        }
    }

    private void focus(ReviewItem item) {
        PathObject p = session.focus(item.id());
        if (p == null) {
            return;
        }
        imageData.getHierarchy().getSelectionModel().setSelectedObject(p); // PathObjectSelectionModel
        if (qupath.getViewer() != null && qupath.getViewer().getImageData() == imageData) {
            qupath.getViewer().centerROI(p.getROI()); // QuPathViewer.centerROI(ROI)
        }
    }

    private void decide(ReviewState state) {
        ReviewItem current = queue.current();
        if (current == null) {
            return;
        }
        if (state == ReviewState.ACCEPTED) {
            queue.accept(current.id());
        } else {
            queue.reject(current.id());
        }
        next();
    }

    private void next() {
        ReviewItem item = queue.next();
        table.refresh();
        counter.setText(queue.counterText());
        if (item != null) {
            table.getSelectionModel().select(item);
            table.scrollTo(item);
        } else {
            counter.setText(queue.counterText() + (queue.hiddenCount() > 0 ? " - all shown objects reviewed"
                    : " - all reviewed") + "; next: Export corrected labels");
        }
    }

    /** "Hide uncertain objects", read at every rebuild so Refresh follows a change made in Settings. */
    private static boolean hideUncertain() {
        try {
            return HubsegPreferences.get().hideUncertain();
        } catch (HubsegException e) {
            return false; // an invalid stored setting is reported by the commands; show everything meanwhile
        }
    }

    private static TableColumn<ReviewItem, String> column(String title, Function<ReviewItem, String> value) {
        TableColumn<ReviewItem, String> column = new TableColumn<>(title);
        column.setCellValueFactory(cell -> new SimpleStringProperty(value.apply(cell.getValue())));
        column.setSortable(false);
        return column;
    }

    private static String format(double value) {
        return Double.isNaN(value) ? "" : String.format(Locale.ROOT, value >= 100 ? "%.0f" : "%.3f", value);
    }
}
