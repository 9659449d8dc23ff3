package qupath.ext.hubseg.core;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A second server started with a token file and a 1 MiB request limit. */
class AuthAndLimitsTest {

    private static final String TOKEN = "hubseg-test-token-7f3a";
    private static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.start(TOKEN, 1);
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void tokenIsRequiredEverywhereButHealth() {
        HubsegClient anonymous = new HubsegClient(server.url, null);
        assertTrue(anonymous.health().authRequired(), "health needs no token and says one is required");
        ApiException missing = assertThrows(ApiException.class, anonymous::models);
        assertEquals(401, missing.status());
        assertEquals("unauthorized", missing.code());
        assertFalse(missing.getMessage().startsWith("HTTP "), missing.getMessage());
        ApiException wrong = assertThrows(ApiException.class, () -> new HubsegClient(server.url, "wrong").models());
        assertEquals(401, wrong.status());
        assertThrows(ApiException.class, anonymous::diagnostics, "diagnostics checks the token too");

        HubsegClient authorised = server.client();
        assertFalse(authorised.models().isEmpty());
        assertTrue(authorised.diagnostics().contains("token required"));
        HubsegClient fromSettings = HubsegClient.fromSettings(HubsegSettings.defaults()
                .withServerUrl(server.url.toString()).withToken(" " + TOKEN + "\n"));
        assertEquals(TestServer.THRESHOLD_MODEL, fromSettings.health().activeModel());
        assertFalse(fromSettings.models().isEmpty(), "token from settings is trimmed and sent");
    }

    @Test
    void tooLargeUploadGetsTheServersMessage() throws IOException {
        byte[] noise = new byte[1536 * 1024];
        new Random(1).nextBytes(noise);
        ApiException e = assertThrows(ApiException.class, () -> server.client().submitDetection(
                new UploadDetectionRequest(noise, "region.png", 0, 0, 1, 0.5, null, null, null, null)));
        assertEquals(413, e.status(), e.getMessage());
        assertEquals("payload_too_large", e.code());
        assertFalse(e.getMessage().startsWith("HTTP "), e.getMessage());
    }
}
