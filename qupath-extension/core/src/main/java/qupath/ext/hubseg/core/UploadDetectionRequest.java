package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/**
 * A detection on pixels QuPath read itself ({@code POST /v1/detections}, multipart form), for images the
 * server cannot open. Results come back in level-0 coordinates of the original image.
 *
 * @param image       PNG or TIFF bytes, RGB
 * @param fileName    e.g. {@code region.png}; its extension tells the server the format
 * @param originX     level-0 x of the upload's top-left pixel
 * @param originY     level-0 y of the upload's top-left pixel
 * @param downsample  level-0 pixels per uploaded pixel (1 = full resolution)
 * @param pixelSizeUm level-0 pixel size in µm
 * @param region      optional rectangle (level-0 px) inside the uploaded extent
 * @param geometry    optional GeoJSON Polygon/MultiPolygon (level-0 px) restricting detection to it
 */
public record UploadDetectionRequest(byte[] image, String fileName, double originX, double originY,
                                     double downsample, double pixelSizeUm, Region region, JsonObject geometry, String model,
                                     DetectionOptions options) {

    public UploadDetectionRequest {
        if (image == null || image.length == 0) {
            throw new HubsegException("The uploaded image is empty.");
        }
        if (!(downsample >= 1 && Double.isFinite(downsample))) {
            throw new HubsegException("The downsample must be a number >= 1 (level-0 pixels per uploaded pixel), got "
                    + downsample + ".");
        }
        if (!(pixelSizeUm > 0 && Double.isFinite(pixelSizeUm))) {
            throw new HubsegException("The image has no pixel size; set it in QuPath (Image tab) first.");
        }
        if (fileName == null || fileName.isBlank()) {
            fileName = "region.png";
        }
    }

    /** Content type guessed from the file name. */
    public String contentType() {
        return contentType(fileName);
    }

    /** The JSON value of the {@code origin} form field. */
    public String originJson() {
        com.google.gson.JsonArray origin = new com.google.gson.JsonArray();
        origin.add(originX);
        origin.add(originY);
        return origin.toString();
    }

    /** Content type of an image upload from its file name: TIFF for .tif/.tiff, else PNG. */
    static String contentType(String fileName) {
        String lower = fileName.toLowerCase(java.util.Locale.ROOT);
        return lower.endsWith(".tif") || lower.endsWith(".tiff") ? "image/tiff" : "image/png";
    }
}
