package qupath.ext.hubseg;

import javafx.beans.property.SimpleStringProperty;
import javafx.geometry.Insets;
import javafx.scene.Scene;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.Tab;
import javafx.scene.control.TabPane;
import javafx.scene.control.TableColumn;
import javafx.scene.control.TableView;
import javafx.scene.input.KeyCode;
import javafx.scene.layout.BorderPane;
import javafx.scene.layout.HBox;
import javafx.stage.Stage;
import javafx.stage.Window;
import qupath.ext.hubseg.core.ModelReference;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Non-modal review panel: hubseg objects most-uncertain first, with Accept (A), Reject (R) and Next (N), and
 * beside them the {@link ReferencesTab References} tab (the image's most certain objects, the model card's crops).
 * Selecting a row makes it the current object and shows it ({@link Source#focus}: in QuPath, selects the object
 * and centres the viewer on it). Decisions go to the {@link ReviewQueue}, whose listener writes them to the
 * objects at once (in QuPath, {@link ReviewSession}), so they survive closing the panel.
 * Plain JavaFX: QuPath's objects stay behind {@link Source}.
 */
final class ReviewPanel {

    /** What the panel reviews: in QuPath, one image's hubseg objects. */
    interface Source {
        /** The objects and their states, read again (at opening and on Refresh). */
        ReviewQueue read();

        /** Shows object {@code id}, which the panel has just made current. */
        void focus(String id);

        /** How many reference objects the user asked detection for (the References tab's target). */
        int wantedReferences();

        /**
         * The model card's reference crops with their image bytes. Uses the network: the panel calls it off the
         * JavaFX thread, only when the image has fewer reference objects than {@link #wantedReferences()}.
         */
        List<Crop> cardReferences();
    }

    /** One reference crop of a model card and its JPEG/PNG bytes. */
    record Crop(ModelReference reference, byte[] image) {
    }

    private final Source source;
    private final Stage stage = new Stage();
    private final TableView<ReviewItem> table = new TableView<>();
    private final Label counter = new Label();
    private final ReferencesTab references;
    private ReviewQueue queue;

    /** Opens the panel, owned by {@code owner} (may be null). */
    static ReviewPanel show(Window owner, Source source) {
        ReviewPanel panel = new ReviewPanel(owner, source);
        panel.stage.show();
        return panel;
    }

    private ReviewPanel(Window owner, Source source) {
        this.source = source;
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

        BorderPane uncertain = new BorderPane(table);
        uncertain.setBottom(buttons);
        Tab uncertainTab = new Tab("Uncertain", uncertain);
        uncertainTab.setClosable(false);
        references = new ReferencesTab(source);
        TabPane tabs = new TabPane(uncertainTab, references.tab());
        Scene scene = new Scene(tabs, 620, 460);
        scene.setOnKeyPressed(e -> {
            if (!uncertainTab.isSelected()) {
                return; // A/R/N decide on the uncertain list only
            }
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
        if (owner != null) {
            stage.initOwner(owner);
        }
        showQueue(source.read());
    }

    /** Whether the panel is open. */
    boolean isShowing() {
        return stage.isShowing();
    }

    /** Brings the panel to the front with the objects read again. */
    void refreshAndFront() {
        rebuild();
        stage.toFront();
    }

    void close() {
        stage.close();
    }

    /** Reads the hubseg objects and their states from the image again. */
    private void rebuild() {
        showQueue(source.read());
    }

    private void showQueue(ReviewQueue reviewQueue) {
        queue = reviewQueue;
        table.getItems().setAll(queue.items());
        counter.setText(queue.counterText());
        if (queue.next() != null) {
            table.getSelectionModel().select(queue.current());
        }
        references.show(queue);
    }

    /** The References tab (for the dialog tests). */
    ReferencesTab references() {
        return references;
    }

    private void focus(ReviewItem item) {
        queue.select(item.id());
        source.focus(item.id());
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

    private static TableColumn<ReviewItem, String> column(String title, Function<ReviewItem, String> value) {
        TableColumn<ReviewItem, String> column = new TableColumn<>(title);
        column.setCellValueFactory(cell -> new SimpleStringProperty(value.apply(cell.getValue())));
        column.setSortable(false);
        return column;
    }

    static String format(double value) {
        return Double.isNaN(value) ? "" : String.format(Locale.ROOT, value >= 100 ? "%.0f" : "%.3f", value);
    }
}
