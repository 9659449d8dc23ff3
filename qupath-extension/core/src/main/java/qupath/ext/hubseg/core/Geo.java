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

    /**
     * A short, stable fingerprint of a geometry's type and coordinates (rounded to 1/100 px), used to
     * notice that the user edited a shape the server proposed.
     */
    public static String fingerprint(JsonObject geometry) {
        if (geometry == null) {
            return "";
        }
        StringBuilder text = new StringBuilder(Json.string(geometry, "type", "?")).append(':');
        appendCoordinates(geometry.get("coordinates"), text);
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(text.toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
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
            text.append(String.format(Locale.ROOT, "%.2f", element.getAsDouble()));
        }
    }
}
