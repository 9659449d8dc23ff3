package qupath.ext.hubseg.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The result of a detection job: a QuPath GeoJSON FeatureCollection in level-0 px, objects ordered by
 * uncertainty rank, with the collection's {@code properties} (model, region, pixel size, energy gate).
 */
public record DetectionResult(List<JsonObject> features, JsonObject properties, JsonObject raw) {

    public static DetectionResult fromJson(JsonObject json) {
        if (!"FeatureCollection".equals(Json.string(json, "type", null))) {
            throw new HubsegException("The server's result is not a GeoJSON FeatureCollection: "
                    + Json.abbreviate(json.toString()));
        }
        List<JsonObject> features = new ArrayList<>();
        if (json.has("features") && json.get("features").isJsonArray()) {
            for (JsonElement feature : json.getAsJsonArray("features")) {
                features.add(feature.getAsJsonObject());
            }
        }
        JsonObject properties = Json.object(json, "properties");
        return new DetectionResult(Collections.unmodifiableList(features),
                properties == null ? new JsonObject() : properties, json);
    }

    /** Name of the model that produced the objects, or empty. */
    public String modelName() {
        JsonObject model = Json.object(properties, "model");
        return model == null ? Json.string(properties, "model", "") : Json.string(model, "name", "");
    }

    /** Version of that model, or empty. */
    public String modelVersion() {
        JsonObject model = Json.object(properties, "model");
        return model == null ? "" : Json.string(model, "version", "");
    }

    /** The energy cutoff below which objects are uncertain, or NaN when the model has no gate. */
    public double energyGateCutoff() {
        JsonObject gate = Json.object(properties, "energy_gate");
        return gate == null ? Json.number(properties, "energy_gate", Double.NaN) : Json.number(gate, "cutoff", Double.NaN);
    }

    public int size() {
        return features.size();
    }
}
