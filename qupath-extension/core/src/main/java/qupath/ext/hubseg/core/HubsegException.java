package qupath.ext.hubseg.core;

/**
 * Base class of every error the core reports to the user. {@link #getMessage()} is a complete
 * sentence meant to be shown as is in a dialog (no stack trace needed).
 */
public class HubsegException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public HubsegException(String message) {
        super(message);
    }

    public HubsegException(String message, Throwable cause) {
        super(message, cause);
    }
}
