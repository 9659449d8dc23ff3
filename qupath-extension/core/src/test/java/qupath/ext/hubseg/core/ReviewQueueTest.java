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
    void reviewScoreOrdersBeforeEnergyMostLikelyFalseFirst() {
        ReviewQueue queue = new ReviewQueue(List.of(
                new ReviewItem("likely-true", "Glomerulus", 1.0, 0.9, 9000, 3, false, 0.95),
                new ReviewItem("likely-false", "Glomerulus", 5.0, 0.9, 1500, 1, false, 0.20),
                new ReviewItem("tie-low-energy", "Glomerulus", 0.5, 0.9, 5000, 2, false, 0.60),
                new ReviewItem("tie-high-energy", "Glomerulus", 3.0, 0.9, 5000, 4, false, 0.60),
                new ReviewItem("flagged", "Glomerulus (uncertain)", 4.0, 0.9, 1200, 5, true, 0.30)), Map.of());
        assertEquals(List.of("flagged", "likely-false", "tie-low-energy", "tie-high-energy", "likely-true"), ids(queue));
    }

    @Test
    void reviewScoreIsReadFromTheMeasurements() {
        ReviewItem scored = ReviewItem.of("a", "Glomerulus", Map.of(HubsegObjects.MEASUREMENT_ENERGY, 2.0,
                HubsegObjects.MEASUREMENT_REVIEW_SCORE, 0.25, HubsegObjects.MEASUREMENT_RANK, 1), Double.NaN);
        assertEquals(0.25, scored.reviewScore(), 1e-12);
        assertEquals("hubseg review score", HubsegObjects.MEASUREMENT_REVIEW_SCORE);
        ReviewItem plain = ReviewItem.of("b", "Glomerulus", Map.of(HubsegObjects.MEASUREMENT_ENERGY, 2.0), Double.NaN);
        assertTrue(Double.isNaN(plain.reviewScore()));
    }

    @Test
    void finishedTrainingJobCarriesItsCalibrationLine() {
        String line = "calibration: held-out regions (1 region(s), n=29 objects, 27 true glomeruli); energy gate cut-off 1.87, AUROC 0.88";
        JobStatus trained = JobStatus.fromJson(Json.parseObject("{\"id\": \"" + "a".repeat(32) + "\", \"kind\": \"training\", "
                + "\"state\": \"succeeded\", \"new_model\": \"m-v2\", \"progress\": {\"done\": 30, \"total\": 30, "
                + "\"message\": \"" + line + "\"}}"));
        assertEquals(line, trained.calibration());
        JobStatus running = JobStatus.fromJson(Json.parseObject("{\"id\": \"" + "b".repeat(32) + "\", \"kind\": \"training\", "
                + "\"state\": \"running\", \"progress\": {\"done\": 3, \"total\": 30, \"message\": \"epoch 3/30 loss 0.5\"}}"));
        assertNull(running.calibration());
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

    private static ReviewItem classed(String id, String className, double energy, boolean uncertain) {
        return new ReviewItem(id, className, energy, 0.5, 1000, 1, uncertain);
    }

    private static List<ReviewItem> mixed() {
        return List.of(
                classed("conf-high", HubsegObjects.CLASS_POSITIVE, 9.0, false),
                classed("unc-high", HubsegObjects.CLASS_UNCERTAIN, 3.0, true),
                classed("conf-low", HubsegObjects.CLASS_POSITIVE, 5.0, false),
                classed("unc-low", HubsegObjects.CLASS_UNCERTAIN, 1.0, true),
                // below the gate by energy but already accepted as Glomerulus: the viewer shows it, so does the list
                classed("accepted-low", HubsegObjects.CLASS_POSITIVE, 2.0, true));
    }

    @Test
    void hideUncertainOffKeepsEveryItemInReviewOrder() {
        ReviewQueue queue = new ReviewQueue(mixed(), Map.of("unc-low", ReviewState.ACCEPTED), false);
        assertEquals(List.of("unc-low", "accepted-low", "unc-high", "conf-low", "conf-high"), ids(queue));
        assertEquals(0, queue.hiddenCount());
        assertEquals("reviewed 1 / 5", queue.counterText());
        assertEquals(ids(queue), ids(new ReviewQueue(mixed(), Map.of())), "the two-argument form shows everything");
    }

    @Test
    void hideUncertainOnLeavesOutTheUncertainClassFromListCursorAndCounts() {
        List<ReviewItem> items = mixed();
        ReviewQueue queue = new ReviewQueue(items, Map.of("unc-low", ReviewState.ACCEPTED,
                "conf-low", ReviewState.REJECTED), true);
        assertEquals(List.of("accepted-low", "conf-low", "conf-high"), ids(queue), "order unchanged among shown items");
        assertEquals(3, queue.size());
        assertEquals(2, queue.hiddenCount());
        assertEquals(1, queue.reviewedCount(), "the hidden accepted item is not counted");
        assertEquals(0, queue.count(ReviewState.ACCEPTED));
        assertEquals("reviewed 1 / 3 (2 uncertain hidden)", queue.counterText());
        assertEquals("accepted-low", queue.next().id());
        assertEquals("conf-high", queue.next().id(), "next skips reviewed items and never visits hidden ones");
        assertEquals("accepted-low", queue.next().id());
        HubsegException error = assertThrows(HubsegException.class, () -> queue.accept("unc-high"));
        assertTrue(error.getMessage().contains("not in the review list"), error.getMessage());
        queue.accept("accepted-low");
        queue.accept("conf-high");
        assertEquals("reviewed 3 / 3 (2 uncertain hidden)", queue.counterText());
        assertNull(queue.next());
        assertEquals(5, items.size(), "nothing is removed from the caller's items");
        assertTrue(ReviewQueue.isHiddenByUncertainSetting(items.get(1)));
        assertFalse(ReviewQueue.isHiddenByUncertainSetting(items.get(4)));
    }

    @Test
    void hideUncertainOnWithOnlyUncertainItems() {
        ReviewQueue queue = new ReviewQueue(List.of(classed("u", HubsegObjects.CLASS_UNCERTAIN, 1.0, true)),
                Map.of(), true);
        assertEquals(0, queue.size());
        assertNull(queue.next());
        assertEquals("reviewed 0 / 0 (1 uncertain hidden)", queue.counterText());
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
        String glom = HubsegObjects.CLASS_POSITIVE;
        Map<String, String> proposal = new HashMap<>(Map.of(HubsegObjects.META_MODEL, "m-v1",
                HubsegObjects.META_SHAPE, "abc"));
        assertEquals(ReviewState.PENDING, HubsegObjects.effectiveState(proposal, glom, "abc"));
        assertTrue(HubsegObjects.isReplaceable(proposal, glom, "abc"));
        assertFalse(HubsegObjects.isReplaceable(proposal, glom, "edited"), "edited shapes are corrected, never replaced");
        assertEquals(ReviewState.CORRECTED, HubsegObjects.effectiveState(proposal, glom, "edited"));
        proposal.put(HubsegObjects.META_REVIEW, "accepted");
        assertFalse(HubsegObjects.isReplaceable(proposal, glom, "abc"));
        proposal.put(HubsegObjects.META_REVIEW, "rejected");
        assertEquals(ReviewState.REJECTED, HubsegObjects.effectiveState(proposal, glom, "edited"), "rejected stays rejected");
        assertFalse(HubsegObjects.isReplaceable(Map.of(), glom, "abc"), "user-drawn objects are never replaced");
        assertFalse(HubsegObjects.isReplaceable(null, glom, "abc"));
        assertEquals(ReviewState.PENDING, ReviewState.fromMetadata("nonsense"));
        assertEquals(ReviewState.CORRECTED, ReviewState.fromMetadata(" Corrected "));
    }
}
