package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/**
 * The {@code options} object of a detection request. Null fields are left out, so the server
 * uses the model's defaults.
 *
 * @param tta        test-time augmentation, e.g. {@code none} or {@code flips}
 * @param threshold  probability threshold in (0, 1), or null for the model's own
 * @param objectType {@code annotation} or {@code detection}
 * @param references how many of the image's most certain objects the server marks with
 *                   {@link HubsegObjects#MEASUREMENT_REFERENCE_RANK} (0..{@link #MAX_REFERENCES}), or null for none
 */
public record DetectionOptions(String tta, Double threshold, String objectType, Integer references) {

    /** The server's bound on {@code options.references}. */
    public static final int MAX_REFERENCES = 100;

    /** Options without reference objects. */
    public DetectionOptions(String tta, Double threshold, String objectType) {
        this(tta, threshold, objectType, null);
    }

    public DetectionOptions {
        if (threshold != null && (threshold.isNaN() || threshold <= 0 || threshold >= 1)) {
            throw new HubsegException("The threshold must be between 0 and 1 (exclusive), got " + threshold + ".");
        }
        if (objectType != null && !objectType.equals("annotation") && !objectType.equals("detection")) {
            throw new HubsegException("The object type must be 'annotation' or 'detection', got '" + objectType + "'.");
        }
        if (references != null && (references < 0 || references > MAX_REFERENCES)) {
            throw new HubsegException("The number of reference objects must be between 0 and " + MAX_REFERENCES
                    + ", got " + references + ".");
        }
    }

    public static DetectionOptions defaults() {
        return new DetectionOptions(null, null, null);
    }

    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        if (tta != null && !tta.isBlank()) {
            json.addProperty("tta", tta);
        }
        if (threshold != null) {
            json.addProperty("threshold", threshold);
        }
        if (objectType != null) {
            json.addProperty("object_type", objectType);
        }
        if (references != null && references > 0) {
            json.addProperty("references", references);
        }
        return json;
    }
}
