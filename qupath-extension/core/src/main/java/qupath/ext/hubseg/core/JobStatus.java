package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;

/**
 * A job as reported by {@code GET /v1/jobs/{id}}.
 *
 * @param raw the complete JSON object, for fields this record does not name (training metrics)
 */
public record JobStatus(String id, String kind, JobState state, Progress progress, String created,
                        String started, String finished, String error, JsonObject raw) {

    /** Progress of a job: {@code done} of {@code total} units (tiles, epochs), with a message. */
    public record Progress(long done, long total, String message) {

        /** Fraction in [0, 1], or -1 when the total is not known yet. */
        public double fraction() {
            return total <= 0 ? -1 : Math.min(1.0, Math.max(0.0, (double) done / total));
        }

        /** E.g. {@code "12 / 40 tiles"} style text for a progress dialog. */
        public String describe() {
            String counts = total > 0 ? done + " / " + total : "";
            if (message == null || message.isBlank()) {
                return counts;
            }
            return counts.isEmpty() ? message : counts + " - " + message;
        }
    }

    /** Training: name of the model version registered on success, or null. */
    public String newModel() {
        return Json.string(raw, "new_model", null);
    }

    /**
     * Training: how the new version's gate was calibrated (the job's last progress message, one line starting
     * {@code "calibration:"}: held-out regions with n, AUROC and cut-off, carried from the base model, or NONE),
     * or null for other jobs and unfinished trainings.
     */
    public String calibration() {
        String message = progress == null ? null : progress.message();
        return message != null && message.startsWith("calibration:") ? message : null;
    }

    /** Upload form: id of the stored uploaded region (usable as {@code image.upload_id} in a label set), or null. */
    public String uploadId() {
        return Json.string(raw, "upload_id", null);
    }

    /** Detection: the model that ran, or null. */
    public String model() {
        return Json.string(raw, "model", null);
    }

    /** True once {@code DELETE /v1/jobs/{id}} was accepted for a running job. */
    public boolean cancelRequested() {
        return Json.bool(raw, "cancel_requested", false);
    }

    public static JobStatus fromJson(JsonObject json) {
        JsonObject p = Json.object(json, "progress");
        Progress progress = p == null ? new Progress(0, 0, "")
                : new Progress(Json.integer(p, "done", 0), Json.integer(p, "total", 0), Json.string(p, "message", ""));
        String error = null;
        if (Json.has(json, "error")) {
            JsonObject errorObject = Json.object(json, "error");
            error = errorObject != null ? Json.string(errorObject, "message", errorObject.toString())
                    : Json.string(json, "error", null);
        }
        return new JobStatus(Json.string(json, "id", null), Json.string(json, "kind", ""),
                JobState.fromWire(Json.string(json, "state", null)), progress,
                Json.string(json, "created", null), Json.string(json, "started", null),
                Json.string(json, "finished", null), error, json);
    }
}
