package qupath.ext.hubseg.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonParseException;

import java.net.URI;
import java.util.Locale;

/**
 * Turns failures into the one sentence the user sees. Connection failures always name the URL and the
 * exact {@code hubseg serve} command; HTTP errors show the server's {@code error.message}.
 */
public final class ErrorMessages {

    /** Port used by {@code hubseg serve} when none is given. */
    public static final int DEFAULT_PORT = 8765;

    private ErrorMessages() {
    }

    /**
     * The command that starts a server that a client configured with {@code serverUrl} can reach.
     * Loopback hosts need no {@code --host}; any other address needs a token (the server refuses to
     * bind it without one).
     */
    public static String serveCommand(URI serverUrl) {
        String host = serverUrl.getHost() == null ? "127.0.0.1" : serverUrl.getHost();
        int port = serverUrl.getPort() > 0 ? serverUrl.getPort()
                : "https".equalsIgnoreCase(serverUrl.getScheme()) ? 443 : 80;
        StringBuilder command = new StringBuilder("hubseg serve");
        boolean loopback = isLoopback(host);
        if (!loopback) {
            command.append(" --host 0.0.0.0");
        }
        if (port != DEFAULT_PORT) {
            command.append(" --port ").append(port);
        }
        if (!loopback) {
            command.append(" --token-file TOKEN_FILE");
        }
        return command.toString();
    }

    /** The message for a server that cannot be reached. */
    public static String unreachable(URI serverUrl) {
        String where = isLoopback(serverUrl.getHost() == null ? "" : serverUrl.getHost())
                ? "in a terminal on this computer"
                : "in a terminal on " + serverUrl.getHost();
        return "The hubseg server is not reachable at " + serverUrl + ". Start it " + where + " with:\n\n    "
                + serveCommand(serverUrl) + "\n\nthen try again. If it runs elsewhere, set its URL in "
                + "Extensions > hubseg > Settings.";
    }

    /**
     * Maps an HTTP error response to an exception carrying the server's message. Bodies that are not
     * the documented {@code {"error": {"code", "message"}}} shape still give a readable sentence.
     */
    public static ApiException fromResponse(int status, String body, URI requestUri) {
        String code = "http_" + status;
        String message = null;
        String field = null;
        if (body != null && !body.isBlank()) {
            try {
                JsonElement parsed = JsonParser.parseString(body);
                if (parsed.isJsonObject() && parsed.getAsJsonObject().has("error")) {
                    JsonElement error = parsed.getAsJsonObject().get("error");
                    if (error.isJsonObject()) {
                        JsonObject errorObject = error.getAsJsonObject();
                        if (errorObject.has("code") && errorObject.get("code").isJsonPrimitive()) {
                            code = errorObject.get("code").getAsString();
                        }
                        if (errorObject.has("message") && errorObject.get("message").isJsonPrimitive()) {
                            message = errorObject.get("message").getAsString();
                        }
                        if (errorObject.has("field") && errorObject.get("field").isJsonPrimitive()) {
                            field = errorObject.get("field").getAsString();
                        }
                    } else if (error.isJsonPrimitive()) {
                        message = error.getAsString();
                    }
                }
            } catch (JsonParseException | IllegalStateException notJson) {
                // fall through: not JSON (e.g. a proxy's HTML page)
            }
        }
        if (message == null || message.isBlank()) {
            message = genericMessage(status, body, requestUri);
        }
        return new ApiException(status, code, message, field);
    }

    private static String genericMessage(int status, String body, URI requestUri) {
        String hint = switch (status) {
            case 401 -> "The server needs an access token: set it in Extensions > hubseg > Settings.";
            case 403 -> "The server refused the request.";
            case 404 -> "The server does not know this address; is it a hubseg server of a matching version?";
            case 413 -> "The request is too large for the server; use a smaller region.";
            default -> status >= 500 ? "The server failed; see its terminal output." : "The request was rejected.";
        };
        String snippet = body == null ? "" : body.strip();
        if (snippet.length() > 200) {
            snippet = snippet.substring(0, 200) + "...";
        }
        return "HTTP " + status + " from " + requestUri + ". " + hint + (snippet.isEmpty() ? "" : " (" + snippet + ")");
    }

    static boolean isLoopback(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        return h.equals("localhost") || h.startsWith("127.") || h.equals("::1") || h.equals("[::1]");
    }
}
