package qupath.ext.hubseg.core;

/**
 * The server answered with an HTTP error. The message is the server's own {@code error.message}
 * (a sentence saying what to fix); {@link #code()} is its stable {@code error.code}.
 */
public class ApiException extends HubsegException {

    private static final long serialVersionUID = 1L;

    private final int status;
    private final String code;

    private final String field;

    public ApiException(int status, String code, String message) {
        this(status, code, message, null);
    }

    public ApiException(int status, String code, String message, String field) {
        super(message);
        this.status = status;
        this.code = code;
        this.field = field;
    }

    /** Dotted name of the offending request field (e.g. {@code options.threshold}), or null. */
    public String field() {
        return field;
    }

    /** HTTP status code, e.g. 404. */
    public int status() {
        return status;
    }

    /** The server's machine-readable error code, e.g. {@code not_found}; never null. */
    public String code() {
        return code;
    }
}
