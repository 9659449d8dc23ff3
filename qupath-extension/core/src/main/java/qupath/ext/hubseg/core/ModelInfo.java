package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/** One model version from {@code GET /v1/models} (a model card plus whether it is active). */
public record ModelInfo(String name, String family, long version, double pixelSizeUm, long tileSize,
                        double threshold, String className, boolean active, JsonObject raw) {

    public static ModelInfo fromJson(JsonObject json) {
        JsonObject card = Json.object(json, "card") != null ? Json.object(json, "card") : json;
        return new ModelInfo(Json.string(card, "name", Json.string(json, "name", "")),
                Json.string(card, "family", ""), Json.integer(card, "version", 0),
                Json.number(card, "pixel_size_um", Double.NaN), Json.integer(card, "tile_size", 0),
                Json.number(card, "threshold", Double.NaN), Json.string(card, "class_name", "Glomerulus"),
                Json.bool(json, "active", false), json);
    }
}
