package qupath.ext.hubseg;

import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A small HTTP server on 127.0.0.1 answering {@code GET /v1/health} and {@code GET /v1/models} the way the
 * hubseg server does (the JSON shapes of server/hubseg_server/openapi.json), for the dialogs that ask the server
 * something. It records the paths asked, so a test sees that the request was really made.
 */
final class FakeServer implements AutoCloseable {

    static final String HEALTH = "{\"status\": \"ok\", \"version\": \"0.1.0\", \"device\": \"cpu\", "
            + "\"active_model\": \"hubseg-pas-glomeruli-v1\", \"queue_length\": 0, \"auth_required\": false}";
    static final String MODELS = "{\"models\": [{\"card\": {\"name\": \"hubseg-pas-glomeruli-v1\", \"pixel_size_um\": 1.0},"
            + " \"active\": true}, {\"card\": {\"name\": \"lab-b-v2\", \"pixel_size_um\": 1.0}, \"active\": false}]}";

    final List<String> asked = new CopyOnWriteArrayList<>();
    private final HttpServer server;

    FakeServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
        server.createContext("/v1/health", exchange -> answer(exchange, HEALTH));
        server.createContext("/v1/models", exchange -> answer(exchange, MODELS));
        server.start();
    }

    private void answer(com.sun.net.httpserver.HttpExchange exchange, String json) throws IOException {
        asked.add(exchange.getRequestMethod() + " " + exchange.getRequestURI().getPath());
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    URI url() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
