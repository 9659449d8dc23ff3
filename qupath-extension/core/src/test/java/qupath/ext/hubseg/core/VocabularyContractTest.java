package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The core's names against the vocabulary the library defines once (hubseg/vocabulary.py, generated copy
 * hubseg/data/vocabulary.json): classes, metadata keys, measurement names and review states.
 */
class VocabularyContractTest {

    private static JsonObject vocabulary;

    @BeforeAll
    static void load() throws IOException {
        Path file = TestServer.repoRoot().resolve("hubseg/data/vocabulary.json");
        assertTrue(Files.isRegularFile(file), "missing " + file + " (python -m hubseg.vocabulary writes it)");
        vocabulary = Json.parseObject(Files.readString(file));
    }

    private static String name(String group, String key) {
        return vocabulary.getAsJsonObject(group).get(key).getAsString();
    }

    @Test
    void classes() {
        assertEquals(name("classes", "glomerulus"), HubsegObjects.CLASS_POSITIVE);
        assertEquals(name("classes", "uncertain"), HubsegObjects.CLASS_UNCERTAIN);
        assertEquals(name("classes", "rejected"), HubsegObjects.CLASS_REJECTED);
    }

    @Test
    void metadataKeys() {
        assertEquals(name("metadata", "model"), HubsegObjects.META_MODEL);
        assertEquals(name("metadata", "review"), HubsegObjects.META_REVIEW);
        assertEquals(name("metadata", "energy"), HubsegObjects.META_ENERGY);
        assertEquals(name("metadata", "shape"), HubsegObjects.META_SHAPE);
        assertEquals(name("metadata", "region"), HubsegObjects.META_REGION);
    }

    @Test
    void measurementNames() {
        assertEquals(name("measurements", "energy"), HubsegObjects.MEASUREMENT_ENERGY);
        assertEquals(name("measurements", "probability"), HubsegObjects.MEASUREMENT_PROBABILITY);
        assertEquals(name("measurements", "area"), HubsegObjects.MEASUREMENT_AREA);
        assertEquals(name("measurements", "perimeter"), HubsegObjects.MEASUREMENT_PERIMETER);
        assertEquals(name("measurements", "rank"), HubsegObjects.MEASUREMENT_RANK);
        assertEquals(name("measurements", "gate"), HubsegObjects.MEASUREMENT_GATE);
        assertEquals(name("measurements", "review_score"), HubsegObjects.MEASUREMENT_REVIEW_SCORE);
    }

    @Test
    void reviewStates() {
        JsonArray states = vocabulary.getAsJsonArray("review_states");
        List<String> expected = new ArrayList<>();
        states.forEach(state -> expected.add(state.getAsString()));
        List<String> core = new ArrayList<>();
        for (ReviewState state : ReviewState.values()) {
            core.add(state.metadataValue());
        }
        assertEquals(expected, core);
    }
}
