package qupath.ext.hubseg.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What self-training learned, read from the new model's card ({@code GET /v1/models/{name}}):
 * {@code provenance.self_training} (image_count, pseudo_positive_objects, uncertain_objects,
 * ignored_tissue_fraction, safety) and {@code energy_gate} (cutoff, source). Missing fields stay NaN / -1 / empty.
 */
public record AdaptationSummary(String model, int images, int pseudoPositives, int uncertain, double ignoredShare,
                                double gateCutoff, String gateSource, Safety safety) {

    /**
     * The safety check of {@code provenance.self_training.safety}: teacher and student scored on held-back images
     * against the teacher's pseudo-labels. {@code verdict} is the server's ({@code ok}, {@code flagged},
     * {@code unchecked}); a card without the check reads as {@code unchecked}.
     */
    public record Safety(String verdict, List<String> reasons, int heldBackImages, int teacherConfidentObjects,
                         double studentRecall, double studentDice, double teacherRecall, double teacherDice) {

        public static final String FLAGGED = "flagged";
        public static final String UNCHECKED = "unchecked";

        public Safety {
            verdict = verdict == null || verdict.isBlank() ? UNCHECKED : verdict;
            reasons = reasons == null ? List.of() : List.copyOf(reasons);
        }

        /** No safety record on the card. */
        public static Safety none() {
            return new Safety(UNCHECKED, List.of(), 0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }

        static Safety of(JsonObject safety) {
            if (safety == null) {
                return none();
            }
            List<String> reasons = new ArrayList<>();
            JsonElement list = safety.get("reasons");
            if (list != null && list.isJsonArray()) {
                list.getAsJsonArray().forEach(r -> reasons.add(r.isJsonPrimitive() ? r.getAsString() : r.toString()));
            }
            JsonObject student = Json.object(safety, "student");
            JsonObject teacher = Json.object(safety, "teacher");
            return new Safety(Json.string(safety, "verdict", UNCHECKED), reasons,
                    (int) Json.integer(safety, "held_back_images", 0),
                    (int) Json.integer(safety, "teacher_confident_objects", 0),
                    figure(student, "recall"), figure(student, "dice"), figure(teacher, "recall"), figure(teacher, "dice"));
        }

        private static double figure(JsonObject object, String key) {
            return object == null ? Double.NaN : Json.number(object, key, Double.NaN);
        }

        /** True when the student fell short of its teacher beyond the server's bounds: never activate by default. */
        public boolean flagged() {
            return FLAGGED.equals(verdict);
        }

        /** One paragraph: the verdict, the figures, and for a flagged student its reasons. */
        public String describe() {
            if (UNCHECKED.equals(verdict) && heldBackImages == 0) {
                return "Safety check: not done (" + (reasons.isEmpty() ? "no held-back images" : reasons.get(0)) + ")";
            }
            StringBuilder text = new StringBuilder(flagged()
                    ? "SAFETY CHECK FLAGGED: the new model disagrees with the current one beyond the bounds"
                    : "Safety check: " + ("ok".equals(verdict) ? "passed" : verdict));
            text.append(String.format(Locale.ROOT, "\n  on %d held-back image(s): the new model finds %s of the current "
                            + "model's %d confident objects (current %s),\n  pixel agreement %s (current %s)",
                    heldBackImages, percent(studentRecall), teacherConfidentObjects, percent(teacherRecall),
                    decimal(studentDice), decimal(teacherDice)));
            for (String reason : reasons) {
                text.append("\n  - ").append(reason);
            }
            return text.toString();
        }

        private static String percent(double value) {
            return Double.isNaN(value) ? "n/a" : String.format(Locale.ROOT, "%.0f %%", 100 * value);
        }

        private static String decimal(double value) {
            return Double.isNaN(value) ? "n/a" : String.format(Locale.ROOT, "%.2f", value);
        }
    }

    public AdaptationSummary {
        safety = safety == null ? Safety.none() : safety;
    }

    /** Reads the summary from a model as the server describes it. */
    public static AdaptationSummary of(ModelInfo model) {
        JsonObject card = Json.object(model.raw(), "card") != null ? Json.object(model.raw(), "card") : model.raw();
        JsonObject provenance = Json.object(card, "provenance");
        JsonObject self = provenance == null ? null : Json.object(provenance, "self_training");
        JsonObject gate = Json.object(card, "energy_gate");
        return new AdaptationSummary(model.name(),
                self == null ? -1 : (int) Json.integer(self, "image_count", -1),
                self == null ? -1 : (int) Json.integer(self, "pseudo_positive_objects", -1),
                self == null ? -1 : (int) Json.integer(self, "uncertain_objects", -1),
                self == null ? Double.NaN : Json.number(self, "ignored_tissue_fraction", Double.NaN),
                gate == null ? Double.NaN : Json.number(gate, "cutoff", Double.NaN),
                gate == null ? "" : Json.string(gate, "source", ""),
                Safety.of(self == null ? null : Json.object(self, "safety")));
    }

    /** False when the safety check flagged the new model: keeping the current model is then the default. */
    public boolean safeToActivate() {
        return !safety.flagged();
    }

    /** The lines the summary dialog shows. */
    public String describe() {
        StringBuilder text = new StringBuilder("New model: ").append(model);
        if (images >= 0) {
            text.append("\nLearned from ").append(images).append(" image(s), without labels:");
            text.append("\n  ").append(pseudoPositives).append(" confident glomeruli taken as positives");
            text.append("\n  ").append(uncertain).append(" uncertain objects left out of the loss");
        }
        if (!Double.isNaN(ignoredShare)) {
            text.append(String.format(Locale.ROOT, "\n  %.0f %% of the tissue ignored (too uncertain to learn from)",
                    100 * ignoredShare));
        }
        text.append("\nUncertainty gate: ").append(Double.isNaN(gateCutoff) ? "none (objects are ordered by energy)"
                : String.format(Locale.ROOT, "energy cut-off %.3f", gateCutoff)
                + (gateSource.isEmpty() ? "" : " (" + gateSource + ")"));
        text.append('\n').append(safety.describe());
        return text.toString();
    }
}
