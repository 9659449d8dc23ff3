package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/** A rectangle in level-0 pixels. */
public record Region(long x, long y, long width, long height) {

    public Region {
        if (width <= 0 || height <= 0) {
            throw new HubsegException("A region needs a positive width and height (got " + width + " x " + height + ").");
        }
    }

    public JsonObject toJson() {
        JsonObject json = new JsonObject();
        json.addProperty("x", x);
        json.addProperty("y", y);
        json.addProperty("width", width);
        json.addProperty("height", height);
        return json;
    }

    /** The rectangle as a closed GeoJSON Polygon. */
    public JsonObject toGeoJsonPolygon() {
        return Geo.rectangle(x, y, width, height);
    }
}
