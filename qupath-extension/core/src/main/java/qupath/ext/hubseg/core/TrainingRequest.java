package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code POST /v1/trainings}: fine-tune {@code baseModel} on stored label sets and/or self-train it on
 * unlabelled slides ("also learn from the unreviewed images of this project").
 *
 * @param labelSetIds      ids from {@code POST /v1/labels}, or null for all stored label sets; may be empty when
 *                         there are unlabelled images
 * @param params           training parameters (see {@link #params}); may be null or empty (the server derives the
 *                         epochs from the amount of data)
 * @param activate         make the new version the active model when training succeeds
 * @param unlabelledPaths  absolute slide paths the server can read (under its slides roots) to self-train on;
 *                         sent as {@code "unlabelled": [{"path": ...}]}; empty for plain fine-tuning
 * @param unlabelledImages more images to self-train on: paths (optionally with QuPath's pixel size) or upload ids
 *                         ({@code {"upload_id": ...}}); sent after {@code unlabelledPaths}
 */
public record TrainingRequest(String baseModel, List<String> labelSetIds, JsonObject params, boolean activate,
                              List<String> unlabelledPaths, List<UnlabelledImage> unlabelledImages) {

    /** Plain fine-tuning on label sets (no unlabelled slides). */
    public TrainingRequest(String baseModel, List<String> labelSetIds, JsonObject params, boolean activate) {
        this(baseModel, labelSetIds, params, activate, List.of(), List.of());
    }

    /** Fine-tuning and/or self-training on slide paths the server reads itself. */
    public TrainingRequest(String baseModel, List<String> labelSetIds, JsonObject params, boolean activate,
                           List<String> unlabelledPaths) {
        this(baseModel, labelSetIds, params, activate, unlabelledPaths, List.of());
    }

    public TrainingRequest {
        unlabelledPaths = unlabelledPaths == null ? List.of() : List.copyOf(unlabelledPaths);
        unlabelledImages = unlabelledImages == null ? List.of() : List.copyOf(unlabelledImages);
    }

    /** The same request self-training on {@code images} (paths or uploads) instead of its unlabelled images. */
    public TrainingRequest withUnlabelled(List<UnlabelledImage> images) {
        return new TrainingRequest(baseModel, labelSetIds, params, activate, List.of(), images);
    }

    /** Every unlabelled image in the order sent ({@code unlabelled[i]} of the server's errors). */
    public List<UnlabelledImage> unlabelled() {
        List<UnlabelledImage> all = new ArrayList<>();
        unlabelledPaths.forEach(p -> all.add(UnlabelledImage.ofPath(p)));
        all.addAll(unlabelledImages);
        return all;
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
        } else if (unlabelled().isEmpty()) {
            throw new HubsegException("Training needs at least one label set (export corrected labels first) "
                    + "or unreviewed images to learn from.");
        }
        List<UnlabelledImage> unlabelled = unlabelled();
        if (!unlabelled.isEmpty()) {
            JsonArray images = new JsonArray();
            unlabelled.forEach(image -> images.add(image.toJson()));
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
