package qupath.ext.hubseg.core;

import java.util.Locale;

/** Review state of a proposed object, stored as metadata {@code hubseg.review}. */
public enum ReviewState {
    PENDING, ACCEPTED, REJECTED, CORRECTED;

    /** The metadata value, e.g. {@code accepted}. */
    public String metadataValue() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** True once the user decided about the object. */
    public boolean isReviewed() {
        return this != PENDING;
    }

    /** Parses a metadata value; missing or unknown values count as pending. */
    public static ReviewState fromMetadata(String value) {
        if (value == null || value.isBlank()) {
            return PENDING;
        }
        try {
            return valueOf(value.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return PENDING;
        }
    }
}
