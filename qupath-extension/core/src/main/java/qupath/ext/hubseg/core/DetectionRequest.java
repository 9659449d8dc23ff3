package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/**
 * A detection on an image file the server can read itself ({@code POST /v1/detections}, JSON form).
 * Give either a rectangular {@code region} or a GeoJSON {@code geometry} (Polygon in level-0 px), or
 * neither for the whole slide.
 *
 * @param pixelSizeUm level-0 pixel size override in µm, or null to use the file's calibration
 * @param model       model name, or null for the server's active model
 */
public record DetectionRequest(String imagePath, Region region, JsonObject geometry, Double pixelSizeUm,
                               String model, DetectionOptions options) {

    public DetectionRequest {
        if (imagePath == null || imagePath.isBlank()) {
            throw new HubsegException("A detection needs the image path.");
        }
        if (region != null && geometry != null) {
            throw new HubsegException("Give either a region or a geometry, not both.");
        }
        if (pixelSizeUm != null && !(pixelSizeUm > 0 && Double.isFinite(pixelSizeUm))) {
            throw new HubsegException("The pixel size must be a positive number of µm, got " + pixelSizeUm + ".");
        }
    }

    public static DetectionRequest wholeImage(String imagePath) {
        return new DetectionRequest(imagePath, null, null, null, null, DetectionOptions.defaults());
    }

    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        JsonObject image = new JsonObject();
        image.addProperty("path", imagePath);
        json.add("image", image);
        if (region != null) {
            json.add("region", region.toJson());
        }
        if (geometry != null) {
            json.add("geometry", geometry);
        }
        if (pixelSizeUm != null) {
            json.addProperty("pixel_size_um", pixelSizeUm);
        }
        if (model != null && !model.isBlank()) {
            json.addProperty("model", model);
        }
        if (options != null) {
            JsonObject o = options.toJson();
            if (o.size() > 0) {
                json.add("options", o);
            }
        }
        return json;
    }
}
