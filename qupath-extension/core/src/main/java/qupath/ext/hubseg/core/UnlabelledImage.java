package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/**
 * One image self-training learns from ({@code "unlabelled"} of {@code POST /v1/trainings}): a slide file the
 * server reads itself, or pixels uploaded with {@link HubsegClient#upload}. Exactly one of {@code path} and
 * {@code uploadId} is set.
 *
 * @param path        absolute path under the server's slides roots, or null
 * @param uploadId    id from {@code POST /v1/uploads}, or null (the upload's own pixel size applies)
 * @param pixelSizeUm level-0 µm/px of {@code path} when QuPath knows it (sent for files without calibration); null
 *                    to let the server read it from the file; never set with {@code uploadId}
 */
public record UnlabelledImage(String path, String uploadId, Double pixelSizeUm) {

    public UnlabelledImage {
        boolean hasPath = path != null && !path.isBlank();
        boolean hasUpload = uploadId != null && !uploadId.isBlank();
        if (hasPath == hasUpload) {
            throw new HubsegException("An unlabelled image needs either a file path or an upload id, not "
                    + (hasPath ? "both." : "neither."));
        }
        if (hasUpload && pixelSizeUm != null) {
            throw new HubsegException("An uploaded image carries its own pixel size; give none with the upload id.");
        }
        if (pixelSizeUm != null && !(pixelSizeUm > 0 && Double.isFinite(pixelSizeUm))) {
            throw new HubsegException("The pixel size of " + path + " must be a positive number of µm, got "
                    + pixelSizeUm + ".");
        }
    }

    /** A file the server reads itself (its own calibration applies). */
    public static UnlabelledImage ofPath(String path) {
        return new UnlabelledImage(path, null, null);
    }

    /** A file the server reads itself, with QuPath's level-0 pixel size (null: the file's own). */
    public static UnlabelledImage ofPath(String path, Double pixelSizeUm) {
        return new UnlabelledImage(path, null, pixelSizeUm);
    }

    /** Pixels stored on the server by {@link HubsegClient#upload}. */
    public static UnlabelledImage ofUpload(String uploadId) {
        return new UnlabelledImage(null, uploadId, null);
    }

    /** {@code {"path": ..., "pixel_size_um"?: ...}} or {@code {"upload_id": ...}}. */
    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        if (uploadId != null && !uploadId.isBlank()) {
            json.addProperty("upload_id", uploadId);
        } else {
            json.addProperty("path", path);
            if (pixelSizeUm != null) {
                json.addProperty("pixel_size_um", pixelSizeUm);
            }
        }
        return json;
    }
}
