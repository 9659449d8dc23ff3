package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The golden review cases the library's tests also run (hubseg/data/review_cases.json, pytest
 * tests/project/test_review_cases.py): the same shapes give the same fingerprints, and the same review situations
 * give the same state, replacement decision and label-set class here as in {@code hubseg.project.review}.
 */
class ReviewCasesTest {

    private static JsonObject cases;

    @BeforeAll
    static void load() throws IOException {
        Path file = TestServer.repoRoot().resolve("hubseg/data/review_cases.json");
        assertTrue(Files.isRegularFile(file), "missing " + file);
        cases = Json.parseObject(Files.readString(file));
    }

    @TestFactory
    List<DynamicTest> fingerprints() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonElement element : cases.getAsJsonArray("fingerprints")) {
            JsonObject item = element.getAsJsonObject();
            tests.add(DynamicTest.dynamicTest(item.get("name").getAsString(), () -> assertEquals(
                    item.get("fingerprint").getAsString(), Geo.fingerprint(item.getAsJsonObject("geometry")))));
        }
        assertFalse(tests.isEmpty());
        return tests;
    }

    @TestFactory
    List<DynamicTest> reviewCases() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonElement element : cases.getAsJsonArray("cases")) {
            JsonObject item = element.getAsJsonObject();
            tests.add(DynamicTest.dynamicTest(item.get("name").getAsString(), () -> check(item)));
        }
        assertFalse(tests.isEmpty());
        return tests;
    }

    @Test
    void casesCoverEveryStateAndLabel() {
        Set<String> states = new HashSet<>();
        Set<String> labels = new HashSet<>();
        for (JsonElement element : cases.getAsJsonArray("cases")) {
            JsonObject expect = element.getAsJsonObject().getAsJsonObject("expect");
            states.add(expect.get("state").getAsString());
            labels.add(expect.get("label").isJsonNull() ? null : expect.get("label").getAsString());
        }
        Set<String> allStates = new HashSet<>(Set.of("user"));
        for (ReviewState state : ReviewState.values()) {
            allStates.add(state.metadataValue());
        }
        assertEquals(allStates, states);
        Set<String> allLabels = new HashSet<>(List.of(HubsegObjects.CLASS_POSITIVE, HubsegObjects.CLASS_UNCERTAIN,
                HubsegObjects.CLASS_REJECTED));
        allLabels.add(null);
        assertEquals(allLabels, labels);
    }

    private static String optional(JsonObject object, String key) {
        JsonElement value = object.get(key);
        return value == null || value.isJsonNull() ? null : value.getAsString();
    }

    private static void check(JsonObject item) {
        JsonObject shape = cases.getAsJsonObject("shape");
        String className = optional(item, "class");
        Map<String, String> metadata = new LinkedHashMap<>();
        boolean hubseg = item.get("hubseg").getAsBoolean();
        if (hubseg) {
            metadata.put(HubsegObjects.META_MODEL, "m-v1");
            String review = optional(item, "review");
            if (review != null) {
                metadata.put(HubsegObjects.META_REVIEW, review);
            }
            switch (item.get("fingerprint").getAsString()) {
                case "matching" -> metadata.put(HubsegObjects.META_SHAPE, Geo.fingerprint(shape));
                case "changed" -> metadata.put(HubsegObjects.META_SHAPE, Geo.fingerprint(cases.getAsJsonObject("other_shape")));
                case "absent" -> { }
                default -> fail("unknown fingerprint case " + item.get("fingerprint"));
            }
        }
        String current = Geo.fingerprint(shape);
        String state = hubseg ? HubsegObjects.effectiveState(metadata, className, current).metadataValue() : "user";
        JsonObject expect = item.getAsJsonObject("expect");
        assertEquals(expect.get("state").getAsString(), state, "state");
        assertEquals(expect.get("replaceable").getAsBoolean(), HubsegObjects.isReplaceable(metadata, className, current),
                "replaceable");
        assertEquals(optional(expect, "label"), label(shape, className, metadata), "label-set class");
    }

    /** The object's class in a label set of a reviewed region around it (unreviewed proposals included). */
    private static String label(JsonObject shape, String className, Map<String, String> metadata) {
        JsonObject feature = new JsonObject();
        feature.addProperty("type", "Feature");
        feature.add("geometry", shape.deepCopy());
        JsonObject properties = new JsonObject();
        properties.addProperty("objectType", "annotation");
        if (className != null) {
            JsonObject classification = new JsonObject();
            classification.addProperty("name", className);
            properties.add("classification", classification);
        }
        JsonObject metadataJson = new JsonObject();
        metadata.forEach(metadataJson::addProperty);
        properties.add("metadata", metadataJson);
        feature.add("properties", properties);
        JsonObject labelSet = new LabelSetBuilder().imagePath("/slides/slide.tif").pixelSizeUm(0.5)
                .addRegion(cases.getAsJsonObject("region")).addFeature(feature).includePending(true).build().labelSet();
        JsonArray features = labelSet.getAsJsonObject("features").getAsJsonArray("features");
        assertTrue(features.size() <= 1);
        return features.isEmpty() ? null : Features.className(features.get(0).getAsJsonObject());
    }
}
