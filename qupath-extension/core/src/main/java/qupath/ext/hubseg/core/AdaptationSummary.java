package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

import java.util.Locale;

/**
 * What self-training learned, read from the new model's card ({@code GET /v1/models/{name}}):
 * {@code provenance.self_training} (image_count, pseudo_positive_objects, uncertain_objects,
 * ignored_tissue_fraction) and {@code energy_gate} (cutoff, source). Missing fields stay NaN / -1 / empty.
 */
public record AdaptationSummary(String model, int images, int pseudoPositives, int uncertain, double ignoredShare,
                                double gateCutoff, String gateSource) {

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
                gate == null ? "" : Json.string(gate, "source", ""));
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
        return text.toString();
    }
}
