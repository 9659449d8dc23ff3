package qupath.ext.hubseg.core;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

/** Small null-tolerant accessors for Gson trees (Gson is bundled with QuPath). */
public final class Json {

    /** Gson that keeps NaN out of requests and writes compact JSON. */
    public static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();
    /** Gson for human-readable files (label sets written into the project). */
    public static final Gson PRETTY = new GsonBuilder().disableHtmlEscaping().setPrettyPrinting().create();

    private Json() {
    }

    public static JsonObject parseObject(String text) {
        try {
            JsonElement element = JsonParser.parseString(text);
            if (!element.isJsonObject()) {
                throw new HubsegException("The server sent JSON that is not an object: " + abbreviate(text));
            }
            return element.getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new HubsegException("The server sent a response that is not JSON: " + abbreviate(text), e);
        }
    }

    public static boolean has(JsonObject object, String key) {
        return object != null && object.has(key) && !object.get(key).isJsonNull();
    }

    public static String string(JsonObject object, String key, String fallback) {
        if (!has(object, key)) {
            return fallback;
        }
        JsonElement value = object.get(key);
        return value.isJsonPrimitive() ? value.getAsString() : value.toString();
    }

    public static double number(JsonObject object, String key, double fallback) {
        if (!has(object, key) || !object.get(key).isJsonPrimitive()) {
            return fallback;
        }
        try {
            return object.get(key).getAsDouble();
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    public static long integer(JsonObject object, String key, long fallback) {
        double value = number(object, key, Double.NaN);
        return Double.isNaN(value) ? fallback : (long) value;
    }

    public static boolean bool(JsonObject object, String key, boolean fallback) {
        if (!has(object, key) || !object.get(key).isJsonPrimitive()) {
            return fallback;
        }
        return object.get(key).getAsBoolean();
    }

    public static JsonObject object(JsonObject object, String key) {
        return has(object, key) && object.get(key).isJsonObject() ? object.getAsJsonObject(key) : null;
    }

    static String abbreviate(String text) {
        if (text == null) {
            return "(empty)";
        }
        String s = text.strip();
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }
}
