package qupath.ext.hubseg.core;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SettingsAndErrorsTest {

    @Test
    void defaultsAreValidAndLocal() {
        HubsegSettings s = HubsegSettings.defaults().validate();
        assertEquals("http://127.0.0.1:8765", s.serverUrl());
        assertEquals("flips", s.tta(), "flip TTA is on unless the user trades it for speed");
        assertEquals("annotation", s.objectType());
        assertEquals(RejectBehaviour.DELETE, s.rejectBehaviour());
        assertFalse(s.hideUncertain(), "uncertain objects are shown unless the user hides them");
        assertNull(s.modelOrNull());
        assertEquals(5, s.references(), "detection marks each image's five most certain objects as references");
        assertEquals("{\"tta\":\"flips\",\"object_type\":\"annotation\",\"references\":5}",
                s.detectionOptions().toJson().toString());
    }

    @Test
    void roundTripsThroughPreferenceMap() {
        HubsegSettings s = new HubsegSettings("http://gpu-box:9000/v1/", "secret", "m-v2", "flips", 0.4, "detection",
                RejectBehaviour.KEEP_AS_REJECTED, true, true);
        Map<String, String> map = s.toMap();
        assertEquals(List.of(HubsegSettings.KEY_URL, HubsegSettings.KEY_TOKEN, HubsegSettings.KEY_MODEL,
                HubsegSettings.KEY_TTA, HubsegSettings.KEY_THRESHOLD, HubsegSettings.KEY_OBJECT_TYPE,
                HubsegSettings.KEY_REJECT, HubsegSettings.KEY_UPLOAD, HubsegSettings.KEY_HIDE_UNCERTAIN,
                HubsegSettings.KEY_REFERENCES),
                List.copyOf(map.keySet()));
        assertEquals("true", map.get("hubseg.hideUncertain"));
        HubsegSettings back = HubsegSettings.fromMap(map);
        assertEquals(s, back);
        assertEquals(URI.create("http://gpu-box:9000"), back.serverUri());
        assertEquals("{\"tta\":\"flips\",\"threshold\":0.4,\"object_type\":\"detection\",\"references\":5}",
                back.detectionOptions().toJson().toString());
        assertFalse(back.toString().contains("secret"), "the token is never printed");
        assertEquals(HubsegSettings.defaults(), HubsegSettings.fromMap(Map.of()));
    }

    @Test
    void referencesPreferenceIsAWholeNumberWithinTheServersBound() {
        HubsegSettings none = HubsegSettings.fromMap(Map.of(HubsegSettings.KEY_REFERENCES, "0")).validate();
        assertEquals(0, none.references());
        assertFalse(none.detectionOptions().toJson().has("references"), "0 asks for no reference objects");
        assertEquals(100, HubsegSettings.fromMap(Map.of(HubsegSettings.KEY_REFERENCES, " 100 ")).validate().references());
        HubsegException text = assertThrows(HubsegException.class,
                () -> HubsegSettings.fromMap(Map.of(HubsegSettings.KEY_REFERENCES, "five")));
        assertTrue(text.getMessage().contains("Reference objects per image") && text.getMessage().contains("0 to 100"),
                text.getMessage());
        HubsegException range = assertThrows(HubsegException.class,
                () -> HubsegSettings.fromMap(Map.of(HubsegSettings.KEY_REFERENCES, "101")).validate());
        assertTrue(range.getMessage().contains("got 101"), range.getMessage());
        assertThrows(HubsegException.class, () -> new DetectionOptions(null, null, null, -1));
    }

    @Test
    void hideUncertainRoundTripsAndDefaultsOff() {
        HubsegSettings hidden = HubsegSettings.defaults().withHideUncertain(true);
        assertTrue(hidden.hideUncertain());
        assertEquals(hidden, HubsegSettings.fromMap(hidden.toMap()));
        assertTrue(hidden.withModel("m-v3").withToken("t").withServerUrl("http://h:1").hideUncertain(),
                "the other with* copies keep the setting");
        assertTrue(hidden.toString().contains("hideUncertain=true"), hidden.toString());
        // preferences written before the setting existed have no key: it stays off
        Map<String, String> old = new HashMap<>(HubsegSettings.defaults().toMap());
        old.remove(HubsegSettings.KEY_HIDE_UNCERTAIN);
        assertFalse(HubsegSettings.fromMap(old).hideUncertain());
        old.put(HubsegSettings.KEY_HIDE_UNCERTAIN, "TRUE");
        assertTrue(HubsegSettings.fromMap(old).hideUncertain());
        assertEquals("false", HubsegSettings.defaults().toMap().get(HubsegSettings.KEY_HIDE_UNCERTAIN));
    }

    @Test
    void invalidValuesNameTheFieldAndChoices() {
        Map<String, String> map = new HashMap<>(HubsegSettings.defaults().toMap());
        map.put(HubsegSettings.KEY_THRESHOLD, "abc");
        assertTrue(assertThrows(HubsegException.class, () -> HubsegSettings.fromMap(map)).getMessage().contains("Threshold"));
        map.put(HubsegSettings.KEY_THRESHOLD, "1.5");
        assertTrue(assertThrows(HubsegException.class, () -> HubsegSettings.fromMap(map).validate()).getMessage()
                .contains("between 0 and 1"));
        map.put(HubsegSettings.KEY_THRESHOLD, "");
        map.put(HubsegSettings.KEY_TTA, "rotations");
        assertTrue(assertThrows(HubsegException.class, () -> HubsegSettings.fromMap(map).validate()).getMessage()
                .contains("[none, h, flips, all]"));
        map.put(HubsegSettings.KEY_TTA, "none");
        map.put(HubsegSettings.KEY_REJECT, "burn");
        assertTrue(assertThrows(HubsegException.class, () -> HubsegSettings.fromMap(map)).getMessage()
                .contains("KEEP_AS_REJECTED"));
        map.put(HubsegSettings.KEY_REJECT, "delete");
        map.put(HubsegSettings.KEY_OBJECT_TYPE, "cell");
        assertTrue(assertThrows(HubsegException.class, () -> HubsegSettings.fromMap(map).validate()).getMessage()
                .contains("[annotation, detection]"));
        assertTrue(assertThrows(HubsegException.class,
                () -> HubsegSettings.defaults().withServerUrl("localhost:8765").validate()).getMessage()
                .contains("http://127.0.0.1:8765"));
        assertThrows(HubsegException.class, () -> new DetectionOptions(null, 0.0, null));
        assertThrows(HubsegException.class, () -> new DetectionOptions(null, null, "cell"));
    }

    @Test
    void aServerOnAnotherComputerNeedsAToken() {
        HubsegSettings remote = HubsegSettings.defaults().withServerUrl("http://gpu-box.lab:8765");
        HubsegException e = assertThrows(HubsegException.class, remote::validate);
        assertTrue(e.getMessage().startsWith("Access token is empty"), e.getMessage());
        assertEquals("t0k3n", remote.withToken("t0k3n").validate().token());
        for (String local : List.of("http://127.0.0.1:8765", "http://localhost:9000", "http://[::1]:8765", "http://127.0.1.1:1")) {
            assertEquals("", HubsegSettings.defaults().withServerUrl(local).validate().token(), local);
        }
    }

    @Test
    void serveCommandMatchesTheUrl() {
        assertEquals("hubseg serve", ErrorMessages.serveCommand(URI.create("http://127.0.0.1:8765")));
        assertEquals("hubseg serve --port 9001", ErrorMessages.serveCommand(URI.create("http://localhost:9001")));
        assertEquals("hubseg serve --host 0.0.0.0 --port 9001 --token-file TOKEN_FILE",
                ErrorMessages.serveCommand(URI.create("http://gpu-box.lab:9001")));
        String message = ErrorMessages.unreachable(URI.create("http://127.0.0.1:9001"));
        assertTrue(message.startsWith("The hubseg server is not reachable at http://127.0.0.1:9001."), message);
        assertTrue(message.contains("\n    hubseg serve --port 9001\n"), message);
    }

    @Test
    void errorBodiesBecomeTheServersMessage() {
        URI uri = URI.create("http://127.0.0.1:1/v1/x");
        ApiException e = ErrorMessages.fromResponse(422,
                "{\"error\":{\"code\":\"invalid_input\",\"message\":\"options.threshold must be < 1\",\"field\":\"options.threshold\"}}", uri);
        assertEquals("options.threshold must be < 1", e.getMessage());
        assertEquals("invalid_input", e.code());
        assertEquals("options.threshold", e.field());
        assertEquals(422, e.status());
        ApiException html = ErrorMessages.fromResponse(502, "<html>Bad gateway</html>", uri);
        assertEquals("http_502", html.code());
        assertTrue(html.getMessage().startsWith("HTTP 502 from http://127.0.0.1:1/v1/x."), html.getMessage());
        assertTrue(ErrorMessages.fromResponse(401, "", uri).getMessage().contains("Settings"));
        assertTrue(ErrorMessages.fromResponse(404, "{\"error\":\"gone\"}", uri).getMessage().equals("gone"));
        assertTrue(ErrorMessages.fromResponse(500, "x".repeat(1000), uri).getMessage().endsWith("...)"));
    }
}
