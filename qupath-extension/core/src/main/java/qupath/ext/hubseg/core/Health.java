package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/** {@code GET /v1/health}. */
public record Health(String status, String version, String device, String activeModel, long queueLength,
                     boolean authRequired, JsonObject raw) {

    public static Health fromJson(JsonObject json) {
        return new Health(Json.string(json, "status", ""), Json.string(json, "version", ""),
                Json.string(json, "device", ""), Json.string(json, "active_model", ""),
                Json.integer(json, "queue_length", 0), Json.bool(json, "auth_required", false), json);
    }

    /** One line for the status dialog. */
    public String describe() {
        return "hubseg " + version + " (" + status + ") on " + device + ", active model " + (activeModel.isEmpty() ? "(none)" : activeModel)
                + ", " + queueLength + " job(s) queued or running" + (authRequired ? ", token required" : "");
    }
}
