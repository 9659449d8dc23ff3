package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.util.List;

/**
 * {@code POST /v1/trainings}: fine-tune {@code baseModel} on stored label sets and/or self-train it on
 * unlabelled slides ("also learn from the unreviewed images of this project").
 *
 * @param labelSetIds     ids from {@code POST /v1/labels}, or null for all stored label sets; may be empty when
 *                        {@code unlabelledPaths} is not
 * @param params          training parameters (see {@link #params}); may be null
 * @param activate        make the new version the active model when training succeeds
 * @param unlabelledPaths absolute slide paths the server can read (under its slides roots) to self-train on;
 *                        sent as {@code "unlabelled": [{"path": ...}]}; empty for plain fine-tuning
 */
public record TrainingRequest(String baseModel, List<String> labelSetIds, JsonObject params, boolean activate,
                              List<String> unlabelledPaths) {

    /** Plain fine-tuning on label sets (no unlabelled slides). */
    public TrainingRequest(String baseModel, List<String> labelSetIds, JsonObject params, boolean activate) {
        this(baseModel, labelSetIds, params, activate, List.of());
    }

    public TrainingRequest {
        unlabelledPaths = unlabelledPaths == null ? List.of() : List.copyOf(unlabelledPaths);
    }

    /** Training parameters as the server names them ({@code TrainingParams}); null values are left out. */
    public static JsonObject params(Integer epochs, Double learningRate, Integer batchSize, Integer seed) {
        JsonObject params = new JsonObject();
        if (epochs != null) {
            params.addProperty("epochs", epochs);
        }
        if (learningRate != null) {
            params.addProperty("learning_rate", learningRate);
        }
        if (batchSize != null) {
            params.addProperty("batch_size", batchSize);
        }
        if (seed != null) {
            params.addProperty("seed", seed);
        }
        return params;
    }


    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        if (baseModel != null && !baseModel.isBlank()) {
            json.addProperty("base_model", baseModel);
        }
        if (labelSetIds == null) {
            json.addProperty("label_sets", "all");
        } else if (!labelSetIds.isEmpty()) {
            JsonArray ids = new JsonArray();
            labelSetIds.forEach(ids::add);
            json.add("label_sets", ids);
        } else if (unlabelledPaths.isEmpty()) {
            throw new HubsegException("Training needs at least one label set (export corrected labels first) "
                    + "or unreviewed images to learn from.");
        }
        if (!unlabelledPaths.isEmpty()) {
            JsonArray images = new JsonArray();
            for (String path : unlabelledPaths) {
                JsonObject image = new JsonObject();
                image.addProperty("path", path);
                images.add(image);
            }
            json.add("unlabelled", images);
        }
        if (params != null && params.size() > 0) {
            json.add("params", params);
        }
        if (activate) {
            json.addProperty("activate", true);
        }
        return json;
    }
}
