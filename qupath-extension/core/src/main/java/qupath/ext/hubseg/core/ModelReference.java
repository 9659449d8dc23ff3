package qupath.ext.hubseg.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.util.ArrayList;
import java.util.List;

/**
 * One entry of a model card's {@code references}: a crop of one of the training data's most certain glomeruli,
 * shown where an image has too few reference objects of its own. Its bytes come from {@code url}
 * ({@code /v1/models/{name}/references/{index}}, index from 1) through {@link HubsegClient#referenceCrop}.
 *
 * @param areaUm2     the glomerulus's area, NaN when the card does not say
 * @param reviewScore its review score, NaN without one
 */
public record ModelReference(String model, int index, String url, int width, int height, double pixelSizeUm,
                             String image, double areaUm2, double energy, double reviewScore) {

    /** The card's references, in its order; none when the card lists none. */
    public static List<ModelReference> of(ModelInfo model) {
        JsonObject card = Json.object(model.raw(), "card") != null ? Json.object(model.raw(), "card") : model.raw();
        JsonElement list = card.get("references");
        List<ModelReference> references = new ArrayList<>();
        if (list == null || !list.isJsonArray()) {
            return references;
        }
        int index = 0;
        for (JsonElement element : list.getAsJsonArray()) {
            index++;
            if (!element.isJsonObject()) {
                continue;
            }
            JsonObject entry = element.getAsJsonObject();
            references.add(new ModelReference(model.name(), index,
                    Json.string(entry, "url", "/v1/models/" + model.name() + "/references/" + index),
                    (int) Json.integer(entry, "width", 0), (int) Json.integer(entry, "height", 0),
                    Json.number(entry, "pixel_size_um", Double.NaN), Json.string(entry, "image", ""),
                    Json.number(entry, "area_um2", Double.NaN), Json.number(entry, "energy", Double.NaN),
                    Json.number(entry, "review_score", Double.NaN)));
        }
        return references;
    }
}
