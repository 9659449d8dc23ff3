package qupath.ext.hubseg.core;

import java.util.Locale;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a self-training job ("Adapt to this project") is doing, for its progress window: the phase (teacher pass,
 * training, calibration), read from the server's progress messages, and an ETA for the phase, from how fast it
 * has advanced so far. Headless; one instance per job, fed each status in order.
 */
public final class AdaptationProgress {

    /** The phases of self-training, in order. */
    public enum Phase {
        WAITING("Waiting for the server"),
        TEACHER("Teacher pass: the current model labels the images"),
        TRAINING("Training the new model on those labels"),
        CALIBRATION("Calibration: the new model's uncertainty gate");

        private final String text;

        Phase(String text) {
            this.text = text;
        }

        public String text() {
            return text;
        }
    }

    private static final Pattern IMAGE = Pattern.compile("teacher: image (\\d+)/(\\d+)");
    private final LongSupplier nanos;
    private Phase phase = Phase.WAITING;
    private long phaseStart;
    private double phaseFraction;

    public AdaptationProgress() {
        this(System::nanoTime);
    }

    /** With a clock, for tests. */
    public AdaptationProgress(LongSupplier nanos) {
        this.nanos = nanos;
        this.phaseStart = nanos.getAsLong();
    }

    /** The phase a server progress message belongs to (messages of hubseg's self-training). */
    public static Phase phaseOf(String message) {
        String m = message == null ? "" : message;
        if (m.contains(" calibrating")) {
            return Phase.CALIBRATION;
        }
        if (m.contains(" training:")) {
            return Phase.TRAINING;
        }
        if (m.contains(" teacher") || m.contains(" pseudo-labels:")) {
            return Phase.TEACHER;
        }
        return Phase.WAITING;
    }

    /** Takes the next status; returns e.g. "Phase 2 of 3: Training the new model on those labels, about 4 min left". */
    public String update(JobStatus.Progress progress) {
        Phase now = phaseOf(progress.message());
        long t = nanos.getAsLong();
        if (now != phase) {
            phase = now;
            phaseStart = t;
            phaseFraction = 0;
        }
        phaseFraction = fraction(progress);
        String head = phase == Phase.WAITING ? phase.text()
                : "Phase " + phase.ordinal() + " of 3: " + phase.text();
        String eta = eta(t - phaseStart, phaseFraction);
        return eta.isEmpty() ? head : head + ", " + eta;
    }

    public Phase phase() {
        return phase;
    }

    /** The share of the current phase done: in the teacher pass, across images (image i of n, tiles of image i). */
    static double fraction(JobStatus.Progress progress) {
        double inStep = progress.total() > 0 ? Math.min(1.0, (double) progress.done() / progress.total()) : 0;
        Matcher image = IMAGE.matcher(progress.message() == null ? "" : progress.message());
        if (image.find()) {
            int index = Integer.parseInt(image.group(1));
            int count = Integer.parseInt(image.group(2));
            return count > 0 ? Math.min(1.0, (index - 1 + inStep) / count) : 0;
        }
        return inStep;
    }

    /** "about N min left" from the time spent and the share done; empty until there is enough to go by. */
    static String eta(long elapsedNanos, double fraction) {
        double elapsedS = elapsedNanos / 1e9;
        if (fraction <= 0.02 || fraction >= 1 || elapsedS < 2) {
            return "";
        }
        double left = elapsedS * (1 - fraction) / fraction;
        if (left < 60) {
            return "less than a minute left";
        }
        return String.format(Locale.ROOT, "about %d min left", Math.round(left / 60));
    }
}
