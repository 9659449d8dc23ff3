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

    /** (group, key in vocabulary.json, the core's constant) for every shared name. */
    private static final String[][] NAMES = {
            {"classes", "glomerulus", HubsegObjects.CLASS_POSITIVE},
            {"classes", "uncertain", HubsegObjects.CLASS_UNCERTAIN},
            {"classes", "rejected", HubsegObjects.CLASS_REJECTED},
            {"metadata", "model", HubsegObjects.META_MODEL},
            {"metadata", "review", HubsegObjects.META_REVIEW},
            {"metadata", "energy", HubsegObjects.META_ENERGY},
            {"metadata", "shape", HubsegObjects.META_SHAPE},
            {"metadata", "region", HubsegObjects.META_REGION},
            {"measurements", "energy", HubsegObjects.MEASUREMENT_ENERGY},
            {"measurements", "probability", HubsegObjects.MEASUREMENT_PROBABILITY},
            {"measurements", "area", HubsegObjects.MEASUREMENT_AREA},
            {"measurements", "perimeter", HubsegObjects.MEASUREMENT_PERIMETER},
            {"measurements", "rank", HubsegObjects.MEASUREMENT_RANK},
            {"measurements", "gate", HubsegObjects.MEASUREMENT_GATE},
            {"measurements", "review_score", HubsegObjects.MEASUREMENT_REVIEW_SCORE},
    };

    @Test
    void classesMetadataKeysAndMeasurementNames() {
        for (String[] name : NAMES) {
            assertEquals(name(name[0], name[1]), name[2], name[0] + "." + name[1]);
        }
    }

    @Test
    void fingerprintParameters() {
        JsonObject fingerprint = vocabulary.getAsJsonObject("fingerprint");
        assertEquals(HubsegObjects.META_SHAPE, fingerprint.get("metadata").getAsString());
        assertEquals(Geo.FINGERPRINT_DECIMALS, fingerprint.get("decimals").getAsInt());
        assertEquals("half_up", fingerprint.get("rounding").getAsString(), "Java's %.Nf rounds half up");
        assertEquals("UTF-8", fingerprint.get("encoding").getAsString());
        assertEquals(Geo.FINGERPRINT_HASH, fingerprint.get("hash").getAsString());
        assertEquals(Geo.FINGERPRINT_HEX_CHARS, fingerprint.get("hex_chars").getAsInt());
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
