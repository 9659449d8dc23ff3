package qupath.ext.hubseg.core;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The requests the client builds against the server's committed contract, server/hubseg_server/openapi.json:
 * every endpoint it calls exists with that method, and every field it sends is declared (the server rejects
 * unknown fields).
 */
class ApiContractTest {

    private static JsonObject api;

    @BeforeAll
    static void load() throws IOException {
        Path file = TestServer.repoRoot().resolve("server/hubseg_server/openapi.json");
        Assumptions.assumeTrue(Files.isRegularFile(file), "no " + file);
        api = Json.parseObject(Files.readString(file));
    }

    private static JsonObject schema(String name) {
        return api.getAsJsonObject("components").getAsJsonObject("schemas").getAsJsonObject(name);
    }

    private static void assertDeclared(String schemaName, JsonObject sent) {
        Set<String> declared = schema(schemaName).getAsJsonObject("properties").keySet();
        for (String key : sent.keySet()) {
            assertTrue(declared.contains(key), schemaName + " does not declare '" + key + "' (declared: " + declared + ")");
        }
    }

    @Test
    void everyEndpointTheClientCallsExists() {
        JsonObject paths = api.getAsJsonObject("paths");
        List<String[]> calls = List.of(
                new String[]{"get", "/v1/health"}, new String[]{"get", "/v1/openapi.json"},
                new String[]{"get", "/v1/models"}, new String[]{"get", "/v1/models/{name}"},
                new String[]{"post", "/v1/models/{name}/activate"}, new String[]{"post", "/v1/detections"},
                new String[]{"get", "/v1/jobs"}, new String[]{"get", "/v1/jobs/{id}"},
                new String[]{"delete", "/v1/jobs/{id}"}, new String[]{"get", "/v1/jobs/{id}/result"},
                new String[]{"delete", "/v1/jobs/{id}/result"}, new String[]{"post", "/v1/labels"},
                new String[]{"get", "/v1/labels"}, new String[]{"get", "/v1/labels/{id}"},
                new String[]{"post", "/v1/trainings"}, new String[]{"post", "/v1/uploads"},
                new String[]{"delete", "/v1/uploads/{id}"});
        for (String[] call : calls) {
            assertTrue(paths.has(call[1]), "missing path " + call[1]);
            assertTrue(paths.getAsJsonObject(call[1]).has(call[0]), "missing " + call[0].toUpperCase() + " " + call[1]);
        }
        assertTrue(paths.getAsJsonObject("/v1/detections").getAsJsonObject("post").getAsJsonObject("requestBody")
                .getAsJsonObject("content").has("multipart/form-data"), "upload form");
    }

    @Test
    void requestBodiesUseOnlyDeclaredFields() {
        DetectionOptions options = new DetectionOptions("flips", 0.4, "detection", 5);
        assertDeclared("DetectionOptions", options.toJson());
        assertDeclared("DetectionRequest", new DetectionRequest("/a.tif", null, Geo.rectangle(0, 0, 5, 5), 0.5, "m",
                options).toJson());
        assertDeclared("DetectionRequest", new DetectionRequest("/a.tif", new Region(0, 0, 5, 5), null, null, null,
                options).toJson());
        assertDeclared("Region", new Region(1, 2, 3, 4).toJson());
        JsonObject training = new TrainingRequest("m", List.of("0".repeat(32)),
                TrainingRequest.params(2, 1e-3, 4, 0), true).toJson();
        assertDeclared("TrainingRequest", training);
        assertDeclared("TrainingParams", training.getAsJsonObject("params"));
        JsonObject selfTraining = new TrainingRequest("m", List.of(), null, false, List.of("/slides/a.tif")).toJson();
        assertDeclared("TrainingRequest", selfTraining);
        assertFalse(selfTraining.has("label_sets"), selfTraining.toString());
        assertEquals("/slides/a.tif", selfTraining.getAsJsonArray("unlabelled").get(0).getAsJsonObject()
                .get("path").getAsString());
        assertThrows(HubsegException.class, () -> new TrainingRequest("m", List.of(), null, false).toJson());
        // self-training on a path with QuPath's pixel size and on uploaded pixels; automatic epochs: no params
        JsonObject mixed = new TrainingRequest("m", List.of(), TrainingRequest.params(null, null, null, null), false)
                .withUnlabelled(List.of(UnlabelledImage.ofPath("/slides/b.tif", 0.5),
                        UnlabelledImage.ofUpload("a".repeat(32)))).toJson();
        assertDeclared("TrainingRequest", mixed);
        assertFalse(mixed.has("params"), mixed.toString());
        assertEquals("[{\"path\":\"/slides/b.tif\",\"pixel_size_um\":0.5},{\"upload_id\":\"" + "a".repeat(32) + "\"}]",
                mixed.getAsJsonArray("unlabelled").toString());
        assertThrows(HubsegException.class, () -> new UnlabelledImage("/a.tif", "a".repeat(32), null));
        assertThrows(HubsegException.class, () -> new UnlabelledImage(null, "a".repeat(32), 0.5));
        assertEquals(Set.of("image", "pixel_size_um", "origin", "downsample"),
                schema("UploadForm").getAsJsonObject("properties").keySet());
        JsonObject labelSet = new LabelSetBuilder().imagePath("/a.tif").pixelSizeUm(0.5).model("m")
                .addRegion(Geo.rectangle(0, 0, 9, 9)).created(Instant.EPOCH).build().labelSet();
        assertDeclared("LabelSet", labelSet);
        // upload form parts
        Set<String> parts = schema("DetectionUpload").getAsJsonObject("properties").keySet();
        assertTrue(parts.containsAll(Set.of("image", "origin", "downsample", "pixel_size_um", "model", "options",
                "region", "geometry")), parts.toString());
    }

    @Test
    void enumsMatchTheSettingsChoices() {
        JsonObject properties = schema("DetectionOptions").getAsJsonObject("properties");
        List<String> tta = properties.getAsJsonObject("tta").getAsJsonArray("enum").asList().stream()
                .map(e -> e.getAsString()).toList();
        List<String> types = properties.getAsJsonObject("object_type").getAsJsonArray("enum").asList().stream()
                .map(e -> e.getAsString()).toList();
        assertEquals(HubsegSettings.TTA_CHOICES, tta);
        assertEquals(HubsegSettings.OBJECT_TYPES, types);
        List<String> states = schema("Job").getAsJsonObject("properties").getAsJsonObject("state")
                .getAsJsonArray("enum").asList().stream().map(e -> e.getAsString()).toList();
        for (String state : states) {
            assertEquals(state, JobState.fromWire(state).wireName());
        }
    }
}
