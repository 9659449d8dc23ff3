package qupath.ext.hubseg;

import org.slf4j.Logger;
import qupath.ext.hubseg.core.HubsegException;

/**
 * What the user is told about a failure (headless, so it is tested): a {@link HubsegException} is already one
 * readable sentence (server message, or "not reachable" with the {@code hubseg serve} command); anything else is
 * a bug or an environment problem, shown with its type and message and logged with its stack trace.
 */
final class Failures {

    private Failures() {
    }

    /** The dialog text for a failure. */
    static String message(Throwable t) {
        if (t instanceof HubsegException) {
            return t.getMessage();
        }
        Throwable cause = t;
        while (cause.getCause() != null && cause.getMessage() == null) {
            cause = cause.getCause(); // e.g. an ExecutionException around the real failure
        }
        String text = cause.getMessage() == null || cause.getMessage().isBlank()
                ? cause.getClass().getSimpleName() : cause.getClass().getSimpleName() + ": " + cause.getMessage();
        return "Unexpected error: " + text + "\nSee View > Show log for details.";
    }

    /** One log line: a warning for expected failures, an error with the stack trace for unexpected ones. */
    static void log(Logger logger, Throwable t) {
        if (t instanceof HubsegException) {
            logger.warn("hubseg: {}", t.getMessage());
        } else {
            logger.error("hubseg: unexpected error: {}", message(t).lines().findFirst().orElse(""), t);
        }
    }
}
