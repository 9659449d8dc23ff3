package qupath.ext.hubseg.core;

import java.util.Locale;

/** The state of a server job ({@code GET /v1/jobs/{id}}). */
public enum JobState {
    QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED;

    /** True when the job will not change any more. */
    public boolean isFinal() {
        return this == SUCCEEDED || this == FAILED || this == CANCELLED;
    }

    /** The wire value, e.g. {@code running}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static JobState fromWire(String value) {
        if (value == null) {
            throw new HubsegException("The server sent a job without a state.");
        }
        try {
            return valueOf(value.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new HubsegException("The server sent an unknown job state '" + value
                    + "' (expected queued, running, succeeded, failed or cancelled).");
        }
    }
}
