package qupath.ext.hubseg.core;

import java.util.Map;

/**
 * Names shared with the server (docs/architecture.md, "GeoJSON properties") and the rules that decide
 * which objects are hubseg proposals and whether a new detection may replace them.
 */
public final class HubsegObjects {

    /** Metadata: the model that proposed the object; its presence marks a hubseg object. */
    public static final String META_MODEL = "hubseg.model";
    /** Metadata: {@code pending|accepted|rejected|corrected}. */
    public static final String META_REVIEW = "hubseg.review";
    /** Metadata: the object's energy as text. */
    public static final String META_ENERGY = "hubseg.energy";
    /**
     * Metadata written by the extension only: fingerprint of the shape as the server proposed it
     * (see {@link Geo#fingerprint}); a different current shape means the user edited it. Not exported.
     */
    public static final String META_SHAPE = "hubseg.shape";
    /** Metadata on a user's region annotation that detection ran in (value: model name). */
    public static final String META_REGION = "hubseg.region";

    public static final String MEASUREMENT_ENERGY = "hubseg energy";
    public static final String MEASUREMENT_PROBABILITY = "hubseg probability";
    public static final String MEASUREMENT_AREA = "Area µm^2";
    public static final String MEASUREMENT_PERIMETER = "Perimeter µm";
    public static final String MEASUREMENT_RANK = "hubseg rank";
    public static final String MEASUREMENT_GATE = "hubseg energy gate";
    /** Probability (0..1) that the object is a true glomerulus, from the model card's review model (optional). */
    public static final String MEASUREMENT_REVIEW_SCORE = "hubseg review score";
    /** 1 = the image's most certain object; on the N most certain when the request asked for N references. */
    public static final String MEASUREMENT_REFERENCE_RANK = "hubseg reference rank";

    public static final String CLASS_POSITIVE = "Glomerulus";
    public static final String CLASS_REJECTED = "Rejected";
    /** Class the server gives objects below the model's energy gate; in a label set their pixels are ignored. */
    public static final String CLASS_UNCERTAIN = "Glomerulus (uncertain)";

    private HubsegObjects() {
    }

    /** True for objects the server proposed (they carry {@link #META_MODEL}). */
    public static boolean isHubsegObject(Map<String, String> metadata) {
        return metadata != null && metadata.get(META_MODEL) != null;
    }

    /**
     * The review state a user's visible actions imply (the library's {@code hubseg.project.review} applies the same
     * rule; both run the golden cases in {@code hubseg/data/review_cases.json}):
     * <ul>
     * <li>class {@code Rejected} or metadata {@code rejected}: rejected;</li>
     * <li>metadata {@code corrected}, or a shape that differs from its fingerprint: corrected;</li>
     * <li>a class other than the proposal classes (reclassified or unclassified by the user): corrected, i.e.
     *     reviewed, never replaced (a label set leaves it out);</li>
     * <li>otherwise the metadata value ({@code pending} when missing or unknown).</li>
     * </ul>
     *
     * @param className          the object's class name ("" or null: none)
     * @param currentFingerprint {@link Geo#fingerprint} of the current shape
     */
    public static ReviewState effectiveState(Map<String, String> metadata, String className, String currentFingerprint) {
        ReviewState stored = ReviewState.fromMetadata(metadata == null ? null : metadata.get(META_REVIEW));
        if (stored == ReviewState.REJECTED || CLASS_REJECTED.equals(className)) {
            return ReviewState.REJECTED;
        }
        if (stored == ReviewState.CORRECTED || isEdited(metadata, currentFingerprint) == Boolean.TRUE) {
            return ReviewState.CORRECTED;
        }
        if (!CLASS_POSITIVE.equals(className) && !CLASS_UNCERTAIN.equals(className)) {
            return ReviewState.CORRECTED;
        }
        return stored;
    }

    /**
     * Whether the shape differs from the fingerprint stamped when it was proposed; null when the object carries
     * none this side can check (objects stored by older project batches carry only {@code hubseg.geometry}).
     */
    public static Boolean isEdited(Map<String, String> metadata, String currentFingerprint) {
        String original = metadata == null ? null : metadata.get(META_SHAPE);
        if (original == null || original.isEmpty() || currentFingerprint == null) {
            return null;
        }
        return !original.equals(currentFingerprint);
    }

    /**
     * Re-running detection replaces an earlier object only when it is a hubseg proposal that is still
     * pending and provably unedited (its fingerprint is present and matches); reviewed, edited, unstamped and
     * user-drawn objects are never touched.
     */
    public static boolean isReplaceable(Map<String, String> metadata, String className, String currentFingerprint) {
        return isHubsegObject(metadata) && effectiveState(metadata, className, currentFingerprint) == ReviewState.PENDING
                && isEdited(metadata, currentFingerprint) == Boolean.FALSE;
    }
}
