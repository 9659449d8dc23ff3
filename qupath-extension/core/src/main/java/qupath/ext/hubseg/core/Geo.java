package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/** GeoJSON helpers (level-0 pixel coordinates). */
public final class Geo {

    private Geo() {
    }

    /** A closed rectangle polygon. */
    public static JsonObject rectangle(double x, double y, double width, double height) {
        JsonArray ring = new JsonArray();
        double[][] corners = {{x, y}, {x + width, y}, {x + width, y + height}, {x, y + height}, {x, y}};
        for (double[] corner : corners) {
            JsonArray point = new JsonArray();
            point.add(corner[0]);
            point.add(corner[1]);
            ring.add(point);
        }
        JsonArray rings = new JsonArray();
        rings.add(ring);
        JsonObject polygon = new JsonObject();
        polygon.addProperty("type", "Polygon");
        polygon.add("coordinates", rings);
        return polygon;
    }

    /** Fingerprint parameters, as in {@code hubseg/data/vocabulary.json} ("fingerprint"; VocabularyContractTest). */
    public static final int FINGERPRINT_DECIMALS = 2;
    public static final String FINGERPRINT_HASH = "SHA-256";
    public static final int FINGERPRINT_HEX_CHARS = 16;

    /**
     * The fingerprint stored as {@code hubseg.shape}: the hash of the geometry's type and coordinates (rounded
     * half-up to 1/100 px), used to notice that the user edited a shape the server proposed. The library computes
     * the same value ({@code hubseg.project.review.shape_fingerprint}; golden cases in hubseg/data/review_cases.json).
     */
    public static String fingerprint(JsonObject geometry) {
        if (geometry == null) {
            return "";
        }
        StringBuilder text = new StringBuilder(Json.string(geometry, "type", "?")).append(':');
        appendCoordinates(geometry.get("coordinates"), text);
        try {
            byte[] digest = MessageDigest.getInstance(FINGERPRINT_HASH)
                    .digest(text.toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, FINGERPRINT_HEX_CHARS / 2);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
        }
    }

    private static void appendCoordinates(JsonElement element, StringBuilder text) {
        if (element == null || element.isJsonNull()) {
            return;
        }
        if (element.isJsonArray()) {
            text.append('[');
            for (JsonElement child : element.getAsJsonArray()) {
                appendCoordinates(child, text);
                text.append(',');
            }
            text.append(']');
        } else if (element.isJsonPrimitive()) {
            // %.Nf rounds HALF_UP on the exact binary value, as the library does with Decimal
            text.append(String.format(Locale.ROOT, "%." + FINGERPRINT_DECIMALS + "f", element.getAsDouble()));
        }
    }
}
