package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Client for the hubseg server's API v1 (see {@code server/hubseg_server/openapi.json}).
 * Every method blocks: call it from a background thread, never from the JavaFX thread.
 * Failures throw {@link ServerUnreachableException} (nothing answered) or {@link ApiException}
 * (the server's own error message); both are {@link HubsegException}s with a user-ready message.
 */
public class HubsegClient {

    /** The name JavaFX gives its application thread. */
    static final String FX_THREAD_NAME = "JavaFX Application Thread";

    private final URI baseUrl;
    private final String token;
    private final HttpClient http;
    private final Duration requestTimeout;

    /**
     * @param baseUrl e.g. {@code http://127.0.0.1:8765} (a trailing slash or {@code /v1} is tolerated)
     * @param token   bearer token, or null/blank when the server runs without one
     */
    public HubsegClient(URI baseUrl, String token) {
        this(baseUrl, token, Duration.ofSeconds(5), Duration.ofSeconds(120));
    }

    public HubsegClient(URI baseUrl, String token, Duration connectTimeout, Duration requestTimeout) {
        this.baseUrl = HubsegSettings.normalise(baseUrl);
        this.token = token == null || token.isBlank() ? null : token.strip();
        this.requestTimeout = requestTimeout;
        this.http = HttpClient.newBuilder().connectTimeout(connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /** A client for the URL and token of the given settings. */
    public static HubsegClient fromSettings(HubsegSettings settings) {
        return new HubsegClient(settings.serverUri(), settings.token());
    }


    public URI baseUrl() {
        return baseUrl;
    }

    // ---- health and diagnostics -------------------------------------------------------------

    /** {@code GET /v1/health}: cheap liveness check; needs no token. */
    public Health health() {
        return Health.fromJson(getObject("/v1/health"));
    }

    /** {@code GET /v1/openapi.json}: the API description the server implements. */
    public JsonObject openApi() {
        return getObject("/v1/openapi.json");
    }

    /**
     * Text for the "Server status" dialog: health plus the models the server offers. Checks the token
     * too, because health alone does not need one.
     */
    public String diagnostics() {
        Health health = health();
        StringBuilder text = new StringBuilder("Server: ").append(baseUrl).append('\n')
                .append(health.describe()).append('\n');
        List<ModelInfo> models = models();
        text.append("Models (").append(models.size()).append("):");
        for (ModelInfo model : models) {
            text.append("\n  ").append(model.name()).append(model.active() || model.name().equals(health.activeModel())
                    ? "  (active)" : "");
        }
        return text.toString();
    }

    // ---- models ---------------------------------------------------------------------------------

    /** {@code GET /v1/models}. */
    public List<ModelInfo> models() {
        JsonObject json = getObject("/v1/models");
        List<ModelInfo> models = new ArrayList<>();
        for (JsonElement element : array(json, "models")) {
            models.add(ModelInfo.fromJson(element.getAsJsonObject()));
        }
        return models;
    }

    /** {@code GET /v1/models/{name}}. */
    public ModelInfo model(String name) {
        return ModelInfo.fromJson(getObject("/v1/models/" + encode(name)));
    }

    /**
     * The bytes (JPEG or PNG) of one of a model card's reference crops, from its {@code url}
     * ({@code GET /v1/models/{name}/references/{index}}).
     */
    public byte[] referenceCrop(ModelReference reference) {
        String path = reference.url();
        if (!path.startsWith("/v1/models/")) {
            throw new HubsegException("The reference crop's url must be a path under /v1/models/, got '" + path + "'.");
        }
        HttpRequest request = builder(path).setHeader("Accept", "image/jpeg, image/png").GET().build();
        HttpResponse<byte[]> response = exchange(request, HttpResponse.BodyHandlers.ofByteArray());
        if (response.statusCode() != 200) {
            throw ErrorMessages.fromResponse(response.statusCode(), new String(response.body(), StandardCharsets.UTF_8),
                    request.uri());
        }
        return response.body();
    }

    /** {@code POST /v1/models/{name}/activate}. */
    public ModelInfo activateModel(String name) {
        return ModelInfo.fromJson(send("POST", "/v1/models/" + encode(name) + "/activate", new JsonObject()));
    }

    // ---- detection and jobs ---------------------------------------------------------------------

    /** {@code POST /v1/detections} with an image path the server reads itself; returns the queued job. */
    public JobStatus submitDetection(DetectionRequest request) {
        return job(send("POST", "/v1/detections", request.toJson()));
    }

    /** {@code POST /v1/detections} as multipart form with the region's pixels. */
    public JobStatus submitDetection(UploadDetectionRequest request) {
        Multipart form = new Multipart();
        form.file("image", request.fileName(), request.contentType(), request.image());
        form.field("origin", request.originJson());
        form.field("downsample", Double.toString(request.downsample()));
        form.field("pixel_size_um", Double.toString(request.pixelSizeUm()));
        if (request.region() != null) {
            form.field("region", request.region().toJson().toString());
        }
        if (request.geometry() != null) {
            form.field("geometry", request.geometry().toString());
        }
        if (request.model() != null && !request.model().isBlank()) {
            form.field("model", request.model());
        }
        if (request.options() != null && request.options().toJson().size() > 0) {
            form.field("options", request.options().toJson().toString());
        }
        HttpRequest http = builder("/v1/detections")
                .header("Content-Type", "multipart/form-data; boundary=" + form.boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(form.finish())).build();
        return job(execute(http));
    }

    /**
     * {@code POST /v1/uploads}: stores image pixels the server cannot read itself (e.g. for self-training:
     * {@link UnlabelledImage#ofUpload}); returns the upload id.
     *
     * @param image       PNG or TIFF bytes, 8-bit RGB
     * @param fileName    e.g. {@code image.png}; its extension names the format
     * @param pixelSizeUm µm per pixel of the uploaded pixels
     */
    public String upload(byte[] image, String fileName, double pixelSizeUm) {
        return upload(image, fileName, pixelSizeUm, 1.0);
    }

    /**
     * {@code POST /v1/uploads} of pixels read at {@code downsample} from an image whose level-0 pixel size is
     * {@code pixelSizeUm} (the uploaded pixels are {@code pixelSizeUm × downsample} µm); returns the upload id.
     */
    public String upload(byte[] image, String fileName, double pixelSizeUm, double downsample) {
        if (image == null || image.length == 0) {
            throw new HubsegException("The image to upload is empty.");
        }
        if (!(pixelSizeUm > 0 && Double.isFinite(pixelSizeUm))) {
            throw new HubsegException("The image has no pixel size; set it in QuPath (Image tab) first.");
        }
        if (!(downsample >= 1 && Double.isFinite(downsample))) {
            throw new HubsegException("The downsample must be a number >= 1, got " + downsample + ".");
        }
        String name = fileName == null || fileName.isBlank() ? "image.png" : fileName;
        Multipart form = new Multipart();
        form.file("image", name, UploadDetectionRequest.contentType(name), image);
        form.field("pixel_size_um", Double.toString(pixelSizeUm));
        if (downsample != 1.0) {
            form.field("downsample", Double.toString(downsample));
        }
        HttpRequest http = builder("/v1/uploads")
                .header("Content-Type", "multipart/form-data; boundary=" + form.boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(form.finish())).build();
        JsonObject json = execute(http);
        String id = Json.string(json, "upload_id", null);
        if (id == null) {
            throw new HubsegException("The server stored the upload but sent no id: " + Json.abbreviate(json.toString()));
        }
        return id;
    }

    /** {@code DELETE /v1/uploads/{id}}: removes uploaded pixels (refused while an unfinished job reads them). */
    public void deleteUpload(String id) {
        send("DELETE", "/v1/uploads/" + encode(id), null);
    }

    /** {@code GET /v1/jobs/{id}}. */
    public JobStatus job(String id) {
        return job(getObject("/v1/jobs/" + encode(id)));
    }

    /** {@code GET /v1/jobs}, newest first, optionally filtered by state and/or kind ({@code detection|training}). */
    public List<JobStatus> jobs(JobState state, String kind) {
        StringBuilder query = new StringBuilder();
        if (state != null) {
            query.append("state=").append(state.wireName());
        }
        if (kind != null && !kind.isBlank()) {
            query.append(query.length() > 0 ? "&" : "").append("kind=").append(encode(kind));
        }
        JsonObject json = getObject("/v1/jobs" + (query.length() > 0 ? "?" + query : ""));
        List<JobStatus> jobs = new ArrayList<>();
        for (JsonElement element : array(json, "jobs")) {
            jobs.add(JobStatus.fromJson(element.getAsJsonObject()));
        }
        return jobs;
    }

    /** {@code DELETE /v1/jobs/{id}}: asks the server to cancel; idempotent. */
    public JobStatus cancel(String id) {
        return job(send("DELETE", "/v1/jobs/" + encode(id), null));
    }

    /** {@code GET /v1/jobs/{id}/result}: the QuPath GeoJSON FeatureCollection of a finished detection. */
    public DetectionResult result(String id) {
        return DetectionResult.fromJson(getObject("/v1/jobs/" + encode(id) + "/result"));
    }

    /** {@code DELETE /v1/jobs/{id}/result}. */
    public void deleteResult(String id) {
        send("DELETE", "/v1/jobs/" + encode(id) + "/result", null);
    }

    /**
     * Polls a job until it finishes, reporting every status to {@code listener}. When
     * {@code cancelRequested} becomes true the job is cancelled on the server and polling continues until
     * the server confirms a final state.
     */
    public JobStatus await(String jobId, JobListener listener, java.util.function.BooleanSupplier cancelRequested,
                           Duration interval) {
        return new JobPoller(this::job, this::cancel, interval).await(jobId, listener, cancelRequested);
    }

    // ---- labels and training --------------------------------------------------------------------

    /** {@code POST /v1/labels}: stores a label set; returns its id. */
    public String postLabels(JsonObject labelSet) {
        JsonObject json = send("POST", "/v1/labels", labelSet);
        String id = Json.string(json, "id", null);
        if (id == null) {
            throw new HubsegException("The server stored the labels but sent no id: " + Json.abbreviate(json.toString()));
        }
        return id;
    }

    /** {@code GET /v1/labels}: summaries of the stored label sets. */
    public List<JsonObject> labelSets() {
        List<JsonObject> sets = new ArrayList<>();
        for (JsonElement element : array(getObject("/v1/labels"), "label_sets")) {
            sets.add(element.getAsJsonObject());
        }
        return sets;
    }

    /** {@code GET /v1/labels/{id}}: one stored label set. */
    public JsonObject labelSet(String id) {
        return getObject("/v1/labels/" + encode(id));
    }

    /** {@code POST /v1/trainings}: starts a fine-tuning job. */
    public JobStatus startTraining(TrainingRequest request) {
        return job(send("POST", "/v1/trainings", request.toJson()));
    }

    /**
     * Escape hatch for scripts and tests: any request to the API with an optional body.
     *
     * @param contentType e.g. {@code application/json}; ignored when {@code body} is null
     * @return the JSON response (a list response is wrapped as {@code {"items": [...]}})
     */
    public JsonObject request(String method, String path, String contentType, byte[] body) {
        HttpRequest.Builder builder = builder(path.startsWith("/") ? path : "/" + path);
        if (body != null) {
            builder.header("Content-Type", contentType).method(method, HttpRequest.BodyPublishers.ofByteArray(body));
        } else {
            builder.method(method, HttpRequest.BodyPublishers.noBody());
        }
        return execute(builder.build());
    }

    // ---- plumbing ---------------------------------------------------------------------------------

    private JobStatus job(JsonObject json) {
        JsonObject inner = Json.object(json, "job");
        return JobStatus.fromJson(inner != null ? inner : json);
    }

    private static Iterable<JsonElement> array(JsonObject json, String key) {
        if (json.has(key) && json.get(key).isJsonArray()) {
            return json.getAsJsonArray(key);
        }
        // tolerate a bare list wrapped by getObject
        if (json.has("items") && json.get("items").isJsonArray()) {
            return json.getAsJsonArray("items");
        }
        return new JsonArray();
    }

    private JsonObject getObject(String path) {
        return send("GET", path, null);
    }

    private JsonObject send(String method, String path, JsonObject body) {
        HttpRequest.Builder builder = builder(path);
        if (body != null) {
            builder.header("Content-Type", "application/json")
                    .method(method, HttpRequest.BodyPublishers.ofString(Json.GSON.toJson(body), StandardCharsets.UTF_8));
        } else {
            builder.method(method, HttpRequest.BodyPublishers.noBody());
        }
        return execute(builder.build());
    }

    /**
     * A request on the JavaFX thread would freeze QuPath until the server answers: refuse it loudly, so that a
     * handler that does network work on the UI thread fails in the dialog tests instead of hanging in QuPath.
     * The thread is recognised by its name, so that the core stays free of JavaFX.
     */
    static void requireOffFxThread(HttpRequest request) {
        if (FX_THREAD_NAME.equals(Thread.currentThread().getName())) {
            throw new IllegalStateException("network request on the JavaFX thread: " + request.method() + " "
                    + request.uri().getPath() + " (run it in the background)");
        }
    }

    private HttpRequest.Builder builder(String path) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(requestTimeout).header("Accept", "application/json");
        if (token != null) {
            builder.header("Authorization", "Bearer " + token);
        }
        return builder;
    }

    /** Sends {@code request} off the JavaFX thread; connection failures become readable {@link HubsegException}s. */
    private <T> HttpResponse<T> exchange(HttpRequest request, HttpResponse.BodyHandler<T> handler) {
        requireOffFxThread(request);
        try {
            return http.send(request, handler);
        } catch (ConnectException | HttpConnectTimeoutException | UnresolvedAddressException e) {
            throw new ServerUnreachableException(baseUrl, e);
        } catch (IOException e) {
            if (e.getCause() instanceof ConnectException || e.getCause() instanceof UnresolvedAddressException) {
                throw new ServerUnreachableException(baseUrl, e);
            }
            throw new HubsegException("The connection to the hubseg server at " + baseUrl + " failed during "
                    + request.method() + " " + request.uri().getPath() + ": " + e.getMessage()
                    + ". Check that the server is still running.", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubsegException("Interrupted while waiting for the hubseg server.", e);
        } catch (IllegalArgumentException e) {
            throw new HubsegException("The server URL '" + baseUrl + "' is not valid: " + e.getMessage(), e);
        }
    }

    private JsonObject execute(HttpRequest request) {
        HttpResponse<String> response = exchange(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        int status = response.statusCode();
        String body = response.body();
        if (status >= 400 || status < 200 || (status >= 300 && status < 400)) {
            throw ErrorMessages.fromResponse(status, body, request.uri());
        }
        if (body == null || body.isBlank()) {
            return new JsonObject();
        }
        String trimmed = body.stripLeading();
        if (trimmed.startsWith("[")) {
            JsonObject wrapper = new JsonObject();
            wrapper.add("items", com.google.gson.JsonParser.parseString(body));
            return wrapper;
        }
        return Json.parseObject(body);
    }

    private static String encode(String segment) {
        if (segment == null || segment.isBlank()) {
            throw new HubsegException("A name or id is missing in the request.");
        }
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }
}
