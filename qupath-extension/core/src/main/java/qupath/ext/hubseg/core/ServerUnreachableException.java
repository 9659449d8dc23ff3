package qupath.ext.hubseg.core;

import java.net.URI;

/**
 * The server could not be reached at all (connection refused, unknown host, connect timeout).
 * The message names the URL and the exact {@code hubseg serve} command that starts a matching server.
 */
public class ServerUnreachableException extends HubsegException {

    private static final long serialVersionUID = 1L;

    private final URI serverUrl;
    private final String serveCommand;

    public ServerUnreachableException(URI serverUrl, Throwable cause) {
        super(ErrorMessages.unreachable(serverUrl), cause);
        this.serverUrl = serverUrl;
        this.serveCommand = ErrorMessages.serveCommand(serverUrl);
    }

    /** The base URL that was tried. */
    public URI serverUrl() {
        return serverUrl;
    }

    /** The command line that starts a server listening on {@link #serverUrl()}. */
    public String serveCommand() {
        return serveCommand;
    }
}
