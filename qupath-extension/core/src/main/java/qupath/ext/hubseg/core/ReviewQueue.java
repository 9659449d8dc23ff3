package qupath.ext.hubseg.core;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;

/**
 * The review panel's model: hubseg objects ordered most-uncertain first (objects that failed the gate, then
 * by review score ascending — most likely false first — then by energy ascending, then by rank), each with a
 * review state, and a cursor.
 * The states live on the QuPath objects (metadata {@code hubseg.review}); this class is rebuilt from
 * them whenever the panel opens, and reports every change to a listener that writes it back.
 * <p>
 * With "Hide uncertain objects" on, items of class {@link HubsegObjects#CLASS_UNCERTAIN} are left out of the
 * list, the cursor and every count (they are only hidden, never deleted; {@link #hiddenCount()} says how many).
 */
public final class ReviewQueue {

    /** Most uncertain first: gate, then review score (if any), then energy. NaN scores and energies go last. */
    public static final Comparator<ReviewItem> ORDER = Comparator
            .comparing((ReviewItem item) -> !item.uncertain())
            .thenComparing(item -> Double.isNaN(item.reviewScore()) ? Double.POSITIVE_INFINITY : item.reviewScore())
            .thenComparing(item -> Double.isNaN(item.energy()) ? Double.POSITIVE_INFINITY : item.energy())
            .thenComparingLong(ReviewItem::rank)
            .thenComparing(ReviewItem::id);

    private final List<ReviewItem> items;
    private final int hiddenCount;
    private final Map<String, ReviewState> states = new LinkedHashMap<>();
    private BiConsumer<ReviewItem, ReviewState> listener = (item, state) -> { };
    private int cursor = -1;

    /**
     * @param items  the objects to review, in any order
     * @param states their current states by id (missing ids are pending)
     */
    public ReviewQueue(Collection<ReviewItem> items, Map<String, ReviewState> states) {
        this(items, states, false);
    }

    /**
     * @param items         the objects to review, in any order
     * @param states        their current states by id (missing ids are pending)
     * @param hideUncertain leave out items of the uncertain class (the "Hide uncertain objects" setting)
     */
    public ReviewQueue(Collection<ReviewItem> items, Map<String, ReviewState> states, boolean hideUncertain) {
        this.items = new ArrayList<>();
        for (ReviewItem item : items) {
            if (!(hideUncertain && isHiddenByUncertainSetting(item))) {
                this.items.add(item);
            }
        }
        this.hiddenCount = items.size() - this.items.size();
        this.items.sort(ORDER);
        for (ReviewItem item : this.items) {
            this.states.put(item.id(), states == null ? ReviewState.PENDING
                    : states.getOrDefault(item.id(), ReviewState.PENDING));
        }
    }

    /**
     * True for the items "Hide uncertain objects" hides: exactly those of class {@link HubsegObjects#CLASS_UNCERTAIN},
     * the class the adapter hides in the viewer, so list and viewer agree (an accepted uncertain object becomes
     * {@code Glomerulus} and shows again even though its energy is still below the gate).
     */
    public static boolean isHiddenByUncertainSetting(ReviewItem item) {
        return HubsegObjects.CLASS_UNCERTAIN.equals(item.className());
    }

    /** Called after every state change, e.g. to write metadata back to the QuPath object. */
    public void setListener(BiConsumer<ReviewItem, ReviewState> listener) {
        this.listener = Objects.requireNonNull(listener);
    }

    /** Items in review order. */
    public List<ReviewItem> items() {
        return List.copyOf(items);
    }

    /** Number of shown items. */
    public int size() {
        return items.size();
    }

    /** Number of items left out because "Hide uncertain objects" is on (0 when it is off). */
    public int hiddenCount() {
        return hiddenCount;
    }

    public ReviewState state(String id) {
        ReviewState state = states.get(id);
        if (state == null) {
            throw new HubsegException("Object " + id + " is not in the review list; reopen the review panel.");
        }
        return state;
    }

    /** Number of items that are accepted, rejected or corrected. */
    public int reviewedCount() {
        return (int) states.values().stream().filter(ReviewState::isReviewed).count();
    }

    /** Count of items in one state. */
    public int count(ReviewState state) {
        return (int) states.values().stream().filter(s -> s == state).count();
    }

    /** E.g. {@code "reviewed 12 / 40"}, or {@code "reviewed 12 / 40 (5 uncertain hidden)"}; counts shown items only. */
    public String counterText() {
        return "reviewed " + reviewedCount() + " / " + size()
                + (hiddenCount > 0 ? " (" + hiddenCount + " uncertain hidden)" : "");
    }

    /** The item under the cursor, or null before the first {@link #next()} / {@link #select}. */
    public ReviewItem current() {
        return cursor >= 0 && cursor < items.size() ? items.get(cursor) : null;
    }

    /** Moves the cursor to the item with this id (e.g. the row the user clicked). */
    public ReviewItem select(String id) {
        for (int i = 0; i < items.size(); i++) {
            if (items.get(i).id().equals(id)) {
                cursor = i;
                return items.get(i);
            }
        }
        throw new HubsegException("Object " + id + " is not in the review list; reopen the review panel.");
    }

    /**
     * Moves to the next pending item after the cursor (wrapping around), or returns null, leaving the
     * cursor where it is, when everything is reviewed. This is also "Skip".
     */
    public ReviewItem next() {
        int n = items.size();
        for (int step = 1; step <= n; step++) {
            int i = Math.floorMod(cursor + step, n);
            if (states.get(items.get(i).id()) == ReviewState.PENDING) {
                cursor = i;
                return items.get(i);
            }
        }
        return null;
    }

    /** Accepts the item (keeps "corrected" if the shape was edited). */
    public ReviewState accept(String id) {
        return set(id, state(id) == ReviewState.CORRECTED ? ReviewState.CORRECTED : ReviewState.ACCEPTED);
    }

    public ReviewState reject(String id) {
        return set(id, ReviewState.REJECTED);
    }

    /** Records that the user edited the shape. */
    public ReviewState markCorrected(String id) {
        return set(id, ReviewState.CORRECTED);
    }

    /** Back to pending (undo). */
    public ReviewState reset(String id) {
        return set(id, ReviewState.PENDING);
    }

    /** Convenience for the current item; returns null when there is none. */
    public ReviewState acceptCurrent() {
        return current() == null ? null : accept(current().id());
    }

    public ReviewState rejectCurrent() {
        return current() == null ? null : reject(current().id());
    }

    private ReviewState set(String id, ReviewState state) {
        state(id); // validates the id
        states.put(id, state);
        ReviewItem item = items.stream().filter(i -> i.id().equals(id)).findFirst().orElseThrow();
        listener.accept(item, state);
        return state;
    }
}
