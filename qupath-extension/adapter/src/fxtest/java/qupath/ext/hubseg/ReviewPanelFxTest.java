package qupath.ext.hubseg;

import javafx.scene.control.Label;
import javafx.scene.control.Tab;
import javafx.scene.control.TabPane;
import javafx.scene.Node;
import javafx.scene.control.TableRow;
import javafx.scene.control.TableView;
import javafx.scene.input.KeyCode;
import javafx.stage.Window;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.ModelReference;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The review panel in a real window: buttons, keys A/R/N and the counter, with a plain source of objects. */
class ReviewPanelFxTest {

    private static final String TITLE = "hubseg: review uncertain objects";

    /** Three objects and what the panel did with them (the decisions, as QuPath's objects would get them). */
    private static class Objects implements ReviewPanel.Source {
        final Map<String, ReviewState> decisions = new LinkedHashMap<>();
        final List<String> focused = new ArrayList<>();

        List<ReviewItem> items() {
            return List.of(item("a", 0.9), item("b", 0.7), item("c", 0.2));
        }

        @Override
        public int wantedReferences() {
            return 0;
        }

        final List<String> cardRequests = new ArrayList<>();

        @Override
        public List<ReviewPanel.Crop> cardReferences() {
            cardRequests.add(Thread.currentThread().getName());
            return List.of();
        }

        @Override
        public ReviewQueue read() {
            ReviewQueue queue = new ReviewQueue(items(), Map.of());
            queue.setListener((item, state) -> decisions.put(item.id(), state));
            return queue;
        }

        @Override
        public void focus(String id) {
            focused.add(id);
        }

        static ReviewItem item(String id, double energy) {
            return ReviewItem.of(id, HubsegObjects.CLASS_UNCERTAIN, Map.of(HubsegObjects.MEASUREMENT_ENERGY, energy,
                    HubsegObjects.MEASUREMENT_PROBABILITY, 1 - energy / 2, HubsegObjects.MEASUREMENT_AREA, 20000.0),
                    Double.NaN);
        }
    }

    /**
     * Five objects, two of them references (as detection with {@code options.references} marks them), while the
     * user asked for five: the card's three crops fill in. Records the thread that fetched them.
     */
    private static final class WithReferences extends Objects {
        @Override
        List<ReviewItem> items() {
            return List.of(item("u1", 0.3), item("u2", 0.5), reference("r2", 2.4, 2, 0.91),
                    reference("r1", 3.1, 1, 0.97), item("u3", 0.6));
        }

        @Override
        public int wantedReferences() {
            return 5;
        }

        @Override
        public List<ReviewPanel.Crop> cardReferences() {
            cardRequests.add(Thread.currentThread().getName());
            List<ReviewPanel.Crop> crops = new ArrayList<>();
            for (int i = 1; i <= 3; i++) {
                crops.add(new ReviewPanel.Crop(new ModelReference("hubseg-pas-glomeruli-v1", i,
                        "/v1/models/hubseg-pas-glomeruli-v1/references/" + i, 96, 96, 1.5, "train-" + i + ".tif",
                        9000 + 1000 * i, 3.0, 0.95), crop(i)));
            }
            return crops;
        }

        private static ReviewItem reference(String id, double energy, int rank, double score) {
            return ReviewItem.of(id, HubsegObjects.CLASS_POSITIVE, Map.of(HubsegObjects.MEASUREMENT_ENERGY, energy,
                    HubsegObjects.MEASUREMENT_REVIEW_SCORE, score, HubsegObjects.MEASUREMENT_AREA, 21000.0 + rank,
                    HubsegObjects.MEASUREMENT_REFERENCE_RANK, rank), Double.NaN);
        }

        /** A glomerulus-like PNG: a pink disc on pale tissue. */
        private static byte[] crop(int i) {
            BufferedImage image = new BufferedImage(96, 96, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = image.createGraphics();
            g.setColor(new Color(240, 220, 230));
            g.fillRect(0, 0, 96, 96);
            g.setColor(new Color(200, 90 + 20 * i, 160));
            g.fillOval(14 + 2 * i, 16, 60, 58 - 4 * i);
            g.dispose();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try {
                ImageIO.write(image, "png", out);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            return out.toByteArray();
        }
    }

    private ReviewPanel panel;

    @BeforeAll
    static void startFx() {
        Fx.start();
    }

    @AfterEach
    void close() {
        if (panel != null) {
            Fx.run(panel::close);
        }
    }

    private String counter(Window window) {
        Label label = Fx.find(window, Label.class, l -> l.getText() != null && l.getText().startsWith("reviewed"),
                "counter");
        return Fx.call(label::getText);
    }

    @Test
    void buttonsAndKeysDecideInOrderAndTheCounterFollows() {
        Objects objects = new Objects();
        panel = Fx.call(() -> ReviewPanel.show(null, objects));
        Window window = Fx.titled(TITLE);
        String first = objects.focused.get(0);
        assertEquals(1, objects.focused.size(), "opening shows the most uncertain object");
        assertTrue(counter(window).startsWith("reviewed 0 / 3"), counter(window));

        Fx.click(Fx.button(window, "Accept (A)"));
        assertEquals(Map.of(first, ReviewState.ACCEPTED), objects.decisions);
        assertTrue(counter(window).startsWith("reviewed 1 / 3"), counter(window));

        Fx.key(window, KeyCode.N); // next without deciding
        Fx.key(window, KeyCode.R);
        assertEquals(2, objects.decisions.size(), objects.decisions.toString());
        assertTrue(objects.decisions.containsValue(ReviewState.REJECTED), objects.decisions.toString());
        assertTrue(counter(window).startsWith("reviewed 2 / 3"), counter(window));
        Fx.screenshot(window, "review-panel");

        Fx.key(window, KeyCode.A);
        assertEquals(3, objects.decisions.size(), objects.decisions.toString());
        assertTrue(counter(window).contains("all reviewed"), counter(window));
        assertEquals(4, objects.focused.size(), "each next object is shown: " + objects.focused);
        assertEquals(List.of(), objects.cardRequests, "no references wanted: the model card is not asked");
    }

    @Test
    void referencesTabListsTheMostCertainAndShowsTheCardsCrops() {
        WithReferences objects = new WithReferences();
        panel = Fx.call(() -> ReviewPanel.show(null, objects));
        Window window = Fx.titled(TITLE);
        TabPane tabs = Fx.find(window, TabPane.class, t -> true, "tabs");
        assertEquals(List.of("Uncertain", "References"), Fx.call(() -> tabs.getTabs().stream().map(Tab::getText).toList()));
        Fx.run(() -> tabs.getSelectionModel().select(1));
        Fx.settle();
        // the crops arrive from a background thread
        long end = System.nanoTime() + 10_000_000_000L;
        while (Fx.call(() -> panel.references().shownCrops().size()) < 3 && System.nanoTime() < end) {
            Fx.pause(50);
        }
        assertEquals(List.of(1, 2, 3), Fx.call(() -> panel.references().shownCrops().stream()
                .map(ModelReference::index).toList()));
        assertEquals(1, objects.cardRequests.size(), "fetched once: " + objects.cardRequests);
        assertNotEquals("JavaFX Application Thread", objects.cardRequests.get(0), "network off the FX thread");

        TableView<?> references = (TableView<?>) Fx.call(() -> window.getScene().lookup("#references"));
        List<String> rows = Fx.call(() -> references.getItems().stream().map(i -> ((ReviewItem) i).id()).toList());
        assertEquals(List.of("r1", "r2"), rows, "the references, most certain first");
        Label status = Fx.find(window, Label.class, l -> l.getText() != null && l.getText().startsWith("2 of 5"),
                "references status");
        assertTrue(Fx.call(status::getText).contains("3 crop(s)"), Fx.call(status::getText));

        int before = objects.focused.size();
        Node second = Fx.call(() -> references.lookupAll(".table-row-cell").stream()
                .filter(n -> n instanceof TableRow<?> row && row.getItem() instanceof ReviewItem item
                        && "r2".equals(item.id())).findFirst().orElseThrow());
        Fx.click(second);
        assertEquals(List.of("r2"), objects.focused.subList(before, objects.focused.size()),
                "a click centres the viewer on the reference");
        Fx.screenshot(window, "review-references");
        assertTrue(objects.decisions.isEmpty(), "looking at references decides nothing");
    }

    @Test
    void rejectButtonAndRefreshReadTheObjectsAgain() {
        Objects objects = new Objects();
        panel = Fx.call(() -> ReviewPanel.show(null, objects));
        Window window = Fx.titled(TITLE);
        Fx.click(Fx.button(window, "Reject (R)"));
        assertEquals(List.of(ReviewState.REJECTED), List.copyOf(objects.decisions.values()));
        Fx.click(Fx.button(window, "Refresh"));
        assertTrue(counter(window).startsWith("reviewed 0 / 3"), "Refresh shows what the source holds now: "
                + counter(window));
    }
}
