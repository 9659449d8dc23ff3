package qupath.ext.hubseg.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.LinkedHashMap;
import java.util.Map;

/** Reads the parts of a QuPath GeoJSON Feature that hubseg uses (class, measurements, metadata). */
public final class Features {

    private Features() {
    }

    /** {@code properties.classification.name} (or a plain string classification), else empty. */
    public static String className(JsonObject feature) {
        JsonObject properties = Json.object(feature, "properties");
        JsonObject classification = Json.object(properties, "classification");
        if (classification != null) {
            return Json.string(classification, "name", "");
        }
        return Json.string(properties, "classification", "");
    }

    /** {@code properties.measurements} as a name→value map (QuPath 0.4+ writes an object). */
    public static Map<String, Double> measurements(JsonObject feature) {
        Map<String, Double> map = new LinkedHashMap<>();
        JsonObject measurements = Json.object(Json.object(feature, "properties"), "measurements");
        if (measurements != null) {
            for (Map.Entry<String, JsonElement> entry : measurements.entrySet()) {
                if (entry.getValue().isJsonPrimitive() && entry.getValue().getAsJsonPrimitive().isNumber()) {
                    map.put(entry.getKey(), entry.getValue().getAsDouble());
                }
            }
        }
        return map;
    }

    /** {@code properties.metadata} as a string map. */
    public static Map<String, String> metadata(JsonObject feature) {
        Map<String, String> map = new LinkedHashMap<>();
        JsonObject metadata = Json.object(Json.object(feature, "properties"), "metadata");
        if (metadata != null) {
            for (Map.Entry<String, JsonElement> entry : metadata.entrySet()) {
                if (entry.getValue().isJsonPrimitive()) {
                    map.put(entry.getKey(), entry.getValue().getAsString());
                }
            }
        }
        return map;
    }

    /** A review row for a feature (id from the feature's {@code id}). */
    public static ReviewItem reviewItem(JsonObject feature, double energyGateCutoff) {
        return ReviewItem.of(Json.string(feature, "id", ""), className(feature), measurements(feature), energyGateCutoff);
    }
}
