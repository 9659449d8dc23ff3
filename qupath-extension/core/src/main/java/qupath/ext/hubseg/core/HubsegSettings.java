package qupath.ext.hubseg.core;

import java.net.URI;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The user's settings, independent of how they are stored (the adapter keeps them in QuPath's
 * persistent preferences under the keys of {@link #toMap()}).
 *
 * @param serverUrl       base URL of the server, e.g. {@code http://127.0.0.1:8765}
 * @param token           bearer token, empty when the server runs without one
 * @param model           model name, empty for the server's active model
 * @param tta             test-time augmentation, one of {@link #TTA_CHOICES}
 * @param threshold       probability threshold in (0, 1), or null for the model's own
 * @param objectType      {@code annotation} or {@code detection}
 * @param rejectBehaviour what Reject does
 * @param alwaysUpload    send pixels even when the server could read the file itself
 * @param hideUncertain   hide objects of class {@link HubsegObjects#CLASS_UNCERTAIN} in the viewer and the
 *                        review list (display only: they are never deleted and are still exported)
 * @param references      how many of each image's most certain objects detection marks as references for the
 *                        review panel's References tab (0..{@link DetectionOptions#MAX_REFERENCES})
 */
public record HubsegSettings(String serverUrl, String token, String model, String tta, Double threshold,
                             String objectType, RejectBehaviour rejectBehaviour, boolean alwaysUpload,
                             boolean hideUncertain, int references) {

    public static final String DEFAULT_URL = "http://127.0.0.1:" + ErrorMessages.DEFAULT_PORT;
    /** Test-time augmentation: none, h (horizontal flip), flips (h + v; the default), all (h, v, hv); as the server's API. */
    public static final List<String> TTA_CHOICES = List.of("none", "h", "flips", "all");
    public static final List<String> OBJECT_TYPES = List.of("annotation", "detection");

    public static final String KEY_URL = "hubseg.serverUrl";
    public static final String KEY_TOKEN = "hubseg.token";
    public static final String KEY_MODEL = "hubseg.model";
    public static final String KEY_TTA = "hubseg.tta";
    public static final String KEY_THRESHOLD = "hubseg.threshold";
    public static final String KEY_OBJECT_TYPE = "hubseg.objectType";
    public static final String KEY_REJECT = "hubseg.rejectBehaviour";
    public static final String KEY_UPLOAD = "hubseg.alwaysUpload";
    public static final String KEY_HIDE_UNCERTAIN = "hubseg.hideUncertain";
    public static final String KEY_REFERENCES = "hubseg.references";
    /** Reference objects per image unless the user changes it. */
    public static final int DEFAULT_REFERENCES = 5;

    /** Settings with the default number of reference objects. */
    public HubsegSettings(String serverUrl, String token, String model, String tta, Double threshold,
                          String objectType, RejectBehaviour rejectBehaviour, boolean alwaysUpload, boolean hideUncertain) {
        this(serverUrl, token, model, tta, threshold, objectType, rejectBehaviour, alwaysUpload, hideUncertain,
                DEFAULT_REFERENCES);
    }

    public HubsegSettings {
        serverUrl = serverUrl == null || serverUrl.isBlank() ? DEFAULT_URL : serverUrl.strip();
        token = token == null ? "" : token.strip();
        model = model == null ? "" : model.strip();
        tta = tta == null || tta.isBlank() ? "flips" : tta.strip().toLowerCase(Locale.ROOT);
        objectType = objectType == null || objectType.isBlank() ? "annotation" : objectType.strip().toLowerCase(Locale.ROOT);
        rejectBehaviour = rejectBehaviour == null ? RejectBehaviour.DELETE : rejectBehaviour;
    }

    public static HubsegSettings defaults() {
        return new HubsegSettings(null, null, null, null, null, null, null, false, false);
    }

    /**
     * Checks every field; throws a {@link HubsegException} naming the field and its valid values.
     */
    public HubsegSettings validate() {
        URI uri = serverUri();
        // the server listens beyond this computer only with a token (hubseg serve refuses otherwise)
        if (token.isEmpty() && !isLoopback(uri.getHost())) {
            throw new HubsegException("Access token is empty, but the server " + serverUrl + " is on another computer, "
                    + "where it always needs one: paste the token it was started with (--token-file).");
        }
        if (!TTA_CHOICES.contains(tta)) {
            throw new HubsegException("Test-time augmentation must be one of " + TTA_CHOICES + ", got '" + tta + "'.");
        }
        if (!OBJECT_TYPES.contains(objectType)) {
            throw new HubsegException("Object type must be one of " + OBJECT_TYPES + ", got '" + objectType + "'.");
        }
        if (threshold != null && !(threshold > 0 && threshold < 1)) {
            throw new HubsegException("Threshold must be between 0 and 1 (exclusive) or empty for the model's own, got "
                    + threshold + ".");
        }
        if (references < 0 || references > DetectionOptions.MAX_REFERENCES) {
            throw new HubsegException("Reference objects per image must be a whole number from 0 to "
                    + DetectionOptions.MAX_REFERENCES + ", got " + references + ".");
        }
        return this;
    }

    /** The server's base URL without trailing slashes or a trailing {@code /v1}. */
    static URI normalise(URI url) {
        if (url == null || url.getScheme() == null || url.getHost() == null) {
            throw new HubsegException("The server URL '" + url + "' is not valid; use e.g. http://127.0.0.1:8765");
        }
        String s = url.toString().replaceAll("/+$", "");
        if (s.endsWith("/v1")) {
            s = s.substring(0, s.length() - 3);
        }
        return URI.create(s);
    }

    /** Whether {@code host} is this computer (localhost, 127.x.x.x or ::1). */
    static boolean isLoopback(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return h.equals("localhost") || h.startsWith("127.") || h.equals("[::1]") || h.equals("::1");
    }

    /** The server URL as a URI; throws a readable error when it is not an http(s) URL. */
    public URI serverUri() {
        try {
            URI uri = URI.create(serverUrl);
            if (uri.getHost() == null || !("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))) {
                throw new IllegalArgumentException("needs http:// or https:// and a host");
            }
            return normalise(uri);
        } catch (IllegalArgumentException e) {
            throw new HubsegException("The server URL '" + serverUrl + "' is not valid (" + e.getMessage()
                    + "); use e.g. " + DEFAULT_URL + ".");
        }
    }

    /** The options object for detection requests. */
    public DetectionOptions detectionOptions() {
        return new DetectionOptions(tta, threshold, objectType, references);
    }

    /** The model to request, or null for the server's active one. */
    public String modelOrNull() {
        return model.isEmpty() ? null : model;
    }

    /** Settings as string key/value pairs (the persistent-preference keys). */
    public Map<String, String> toMap() {
        Map<String, String> map = new LinkedHashMap<>();
        map.put(KEY_URL, serverUrl);
        map.put(KEY_TOKEN, token);
        map.put(KEY_MODEL, model);
        map.put(KEY_TTA, tta);
        map.put(KEY_THRESHOLD, threshold == null ? "" : Double.toString(threshold));
        map.put(KEY_OBJECT_TYPE, objectType);
        map.put(KEY_REJECT, rejectBehaviour.name());
        map.put(KEY_UPLOAD, Boolean.toString(alwaysUpload));
        map.put(KEY_HIDE_UNCERTAIN, Boolean.toString(hideUncertain));
        map.put(KEY_REFERENCES, Integer.toString(references));
        return map;
    }

    /** Reads settings written by {@link #toMap()}; missing keys take defaults, bad values throw readable errors. */
    public static HubsegSettings fromMap(Map<String, String> map) {
        String thresholdText = map.getOrDefault(KEY_THRESHOLD, "").strip();
        Double threshold = null;
        if (!thresholdText.isEmpty()) {
            try {
                threshold = Double.parseDouble(thresholdText);
            } catch (NumberFormatException e) {
                throw new HubsegException("Threshold must be a number between 0 and 1 or empty, got '" + thresholdText + "'.");
            }
        }
        String rejectText = map.getOrDefault(KEY_REJECT, "").strip();
        RejectBehaviour reject;
        try {
            reject = rejectText.isEmpty() ? null : RejectBehaviour.valueOf(rejectText.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new HubsegException("Reject behaviour must be one of " + List.of(RejectBehaviour.values())
                    + ", got '" + rejectText + "'.");
        }
        return new HubsegSettings(map.get(KEY_URL), map.get(KEY_TOKEN), map.get(KEY_MODEL), map.get(KEY_TTA), threshold,
                map.get(KEY_OBJECT_TYPE), reject, Boolean.parseBoolean(map.getOrDefault(KEY_UPLOAD, "false")),
                Boolean.parseBoolean(map.getOrDefault(KEY_HIDE_UNCERTAIN, "false")),
                parseReferences(map.getOrDefault(KEY_REFERENCES, "")));
    }

    /** The references preference as text: empty for the default, else a whole number. */
    public static int parseReferences(String text) {
        String t = text == null ? "" : text.strip();
        if (t.isEmpty()) {
            return DEFAULT_REFERENCES;
        }
        try {
            return Integer.parseInt(t);
        } catch (NumberFormatException e) {
            throw new HubsegException("Reference objects per image must be a whole number from 0 to "
                    + DetectionOptions.MAX_REFERENCES + ", got '" + t + "'.");
        }
    }

    public HubsegSettings withServerUrl(String url) {
        return new HubsegSettings(url, token, model, tta, threshold, objectType, rejectBehaviour, alwaysUpload, hideUncertain, references);
    }

    public HubsegSettings withToken(String newToken) {
        return new HubsegSettings(serverUrl, newToken, model, tta, threshold, objectType, rejectBehaviour, alwaysUpload, hideUncertain, references);
    }

    public HubsegSettings withModel(String newModel) {
        return new HubsegSettings(serverUrl, token, newModel, tta, threshold, objectType, rejectBehaviour, alwaysUpload, hideUncertain, references);
    }

    public HubsegSettings withHideUncertain(boolean hide) {
        return new HubsegSettings(serverUrl, token, model, tta, threshold, objectType, rejectBehaviour, alwaysUpload, hide, references);
    }

    @Override
    public String toString() {
        // never print the token
        return "HubsegSettings[serverUrl=" + serverUrl + ", token=" + (token.isEmpty() ? "(none)" : "(set)")
                + ", model=" + model + ", tta=" + tta + ", threshold=" + threshold + ", objectType=" + objectType
                + ", rejectBehaviour=" + rejectBehaviour + ", alwaysUpload=" + alwaysUpload + ", hideUncertain=" + hideUncertain
                + ", references=" + references + "]";
    }
}
