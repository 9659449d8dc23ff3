package qupath.ext.hubseg.core;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ReviewQueueTest {

    private static ReviewItem item(String id, double energy, boolean uncertain, long rank) {
        return new ReviewItem(id, "Glomerulus", energy, 0.9, 1000, rank, uncertain);
    }

    private static List<String> ids(ReviewQueue queue) {
        return queue.items().stream().map(ReviewItem::id).toList();
    }

    @Test
    void ordersUncertainFirstThenEnergyAscendingWithNaNLast() {
        ReviewQueue queue = new ReviewQueue(List.of(
                item("confident-high", 9.0, false, 5),
                item("nan", Double.NaN, false, 6),
                item("uncertain-high", 4.0, true, 3),
                item("confident-low", 2.0, false, 2),
                item("uncertain-low", 1.0, true, 1)), Map.of());
        assertEquals(List.of("uncertain-low", "uncertain-high", "confident-low", "confident-high", "nan"), ids(queue));
    }

    @Test
    void equalEnergiesFallBackToRankThenId() {
        ReviewQueue queue = new ReviewQueue(List.of(item("b", 1.0, false, 2), item("c", 1.0, false, 1),
                item("a", 1.0, false, 2)), Map.of());
        assertEquals(List.of("c", "a", "b"), ids(queue));
    }

    @Test
    void countsAndCounterText() {
        ReviewQueue queue = new ReviewQueue(List.of(item("a", 1, false, 1), item("b", 2, false, 2),
                item("c", 3, false, 3)), Map.of("c", ReviewState.CORRECTED));
        assertEquals("reviewed 1 / 3", queue.counterText());
        queue.accept("a");
        queue.reject("b");
        assertEquals("reviewed 3 / 3", queue.counterText());
        assertEquals(1, queue.count(ReviewState.ACCEPTED));
        assertEquals(1, queue.count(ReviewState.REJECTED));
        assertEquals(1, queue.count(ReviewState.CORRECTED));
        queue.reset("b");
        assertEquals("reviewed 2 / 3", queue.counterText());
    }

    @Test
    void nextVisitsPendingItemsInOrderWrapsAndSkipsReviewed() {
        ReviewQueue queue = new ReviewQueue(List.of(item("a", 1, false, 1), item("b", 2, false, 2),
                item("c", 3, false, 3)), Map.of("b", ReviewState.ACCEPTED));
        assertNull(queue.current());
        assertEquals("a", queue.next().id());
        assertEquals("c", queue.next().id(), "b is already reviewed");
        assertEquals("a", queue.next().id(), "skip wraps around to the remaining pending item");
        queue.acceptCurrent();
        assertEquals("c", queue.next().id());
        queue.rejectCurrent();
        assertNull(queue.next(), "nothing pending");
        assertEquals("c", queue.current().id(), "cursor stays on the last item");
    }

    @Test
    void acceptKeepsCorrectedAndListenerSeesEveryChange() {
        ReviewQueue queue = new ReviewQueue(List.of(item("a", 1, false, 1), item("b", 2, false, 2)),
                Map.of("a", ReviewState.CORRECTED));
        List<String> changes = new ArrayList<>();
        queue.setListener((it, state) -> changes.add(it.id() + "=" + state.metadataValue()));
        assertEquals(ReviewState.CORRECTED, queue.accept("a"));
        assertEquals(ReviewState.ACCEPTED, queue.accept("b"));
        queue.markCorrected("b");
        assertEquals(List.of("a=corrected", "b=accepted", "b=corrected"), changes);
    }

    @Test
    void unknownIdGivesReadableError() {
        ReviewQueue queue = new ReviewQueue(List.of(item("a", 1, false, 1)), null);
        HubsegException error = assertThrows(HubsegException.class, () -> queue.accept("zzz"));
        assertTrue(error.getMessage().contains("reopen the review panel"), error.getMessage());
        assertThrows(HubsegException.class, () -> queue.select("zzz"));
        assertEquals("a", queue.select("a").id());
    }

    @Test
    void emptyQueue() {
        ReviewQueue queue = new ReviewQueue(List.of(), Map.of());
        assertNull(queue.next());
        assertNull(queue.acceptCurrent());
        assertEquals("reviewed 0 / 0", queue.counterText());
    }

    @Test
    void reviewItemReadsMeasurementsAndGate() {
        Map<String, Double> m = new HashMap<>();
        m.put(HubsegObjects.MEASUREMENT_ENERGY, 2.5);
        m.put(HubsegObjects.MEASUREMENT_PROBABILITY, 0.8);
        m.put(HubsegObjects.MEASUREMENT_AREA, 12000.0);
        m.put(HubsegObjects.MEASUREMENT_RANK, 4.0);
        ReviewItem confident = ReviewItem.of("x", "Glomerulus", m, 1.0);
        assertEquals(2.5, confident.energy());
        assertEquals(0.8, confident.probability());
        assertEquals(12000.0, confident.areaUm2());
        assertEquals(4, confident.rank());
        assertFalse(confident.uncertain());
        assertTrue(ReviewItem.of("x", "Glomerulus", m, 3.0).uncertain(), "energy below the model's cutoff");
        m.put(HubsegObjects.MEASUREMENT_GATE, 5.0);
        assertTrue(ReviewItem.of("x", "Glomerulus", m, Double.NaN).uncertain(), "per-object gate wins");
        assertTrue(ReviewItem.of("x", "Glomerulus (uncertain)", Map.of(), Double.NaN).uncertain());
        ReviewItem bare = ReviewItem.of("y", null, null, Double.NaN);
        assertTrue(Double.isNaN(bare.energy()));
        assertEquals(Long.MAX_VALUE, bare.rank());
    }

    @Test
    void effectiveStateAndReplacementRules() {
        Map<String, String> proposal = new HashMap<>(Map.of(HubsegObjects.META_MODEL, "m-v1",
                HubsegObjects.META_SHAPE, "abc"));
        assertEquals(ReviewState.PENDING, HubsegObjects.effectiveState(proposal, "abc"));
        assertTrue(HubsegObjects.isReplaceable(proposal, "abc"));
        assertFalse(HubsegObjects.isReplaceable(proposal, "edited"), "edited shapes are corrected, never replaced");
        assertEquals(ReviewState.CORRECTED, HubsegObjects.effectiveState(proposal, "edited"));
        proposal.put(HubsegObjects.META_REVIEW, "accepted");
        assertFalse(HubsegObjects.isReplaceable(proposal, "abc"));
        proposal.put(HubsegObjects.META_REVIEW, "rejected");
        assertEquals(ReviewState.REJECTED, HubsegObjects.effectiveState(proposal, "edited"), "rejected stays rejected");
        assertFalse(HubsegObjects.isReplaceable(Map.of(), "abc"), "user-drawn objects are never replaced");
        assertFalse(HubsegObjects.isReplaceable(null, "abc"));
        assertEquals(ReviewState.PENDING, ReviewState.fromMetadata("nonsense"));
        assertEquals(ReviewState.CORRECTED, ReviewState.fromMetadata(" Corrected "));
    }
}
