package qupath.ext.hubseg;

import javafx.scene.control.Label;
import javafx.scene.input.KeyCode;
import javafx.stage.Window;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The review panel in a real window: buttons, keys A/R/N and the counter, with a plain source of objects. */
class ReviewPanelFxTest {

    private static final String TITLE = "hubseg: review uncertain objects";

    /** Three objects and what the panel did with them (the decisions, as QuPath's objects would get them). */
    private static final class Objects implements ReviewPanel.Source {
        final Map<String, ReviewState> decisions = new LinkedHashMap<>();
        final List<String> focused = new ArrayList<>();

        @Override
        public ReviewQueue read() {
            List<ReviewItem> items = List.of(
                    item("a", 0.9), item("b", 0.7), item("c", 0.2));
            ReviewQueue queue = new ReviewQueue(items, Map.of());
            queue.setListener((item, state) -> decisions.put(item.id(), state));
            return queue;
        }

        @Override
        public void focus(String id) {
            focused.add(id);
        }

        private static ReviewItem item(String id, double energy) {
            return ReviewItem.of(id, HubsegObjects.CLASS_UNCERTAIN, Map.of(HubsegObjects.MEASUREMENT_ENERGY, energy,
                    HubsegObjects.MEASUREMENT_PROBABILITY, 1 - energy / 2, HubsegObjects.MEASUREMENT_AREA, 20000.0),
                    Double.NaN);
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
