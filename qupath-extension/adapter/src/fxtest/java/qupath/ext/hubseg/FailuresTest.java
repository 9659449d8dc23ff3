package qupath.ext.hubseg;

import org.junit.jupiter.api.Test;
import qupath.ext.hubseg.core.HubsegException;

import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a command's failure dialog says. */
class FailuresTest {

    @Test
    void aHubsegErrorIsShownAsItsOwnSentence() {
        assertEquals("Open an image first.", Failures.message(new HubsegException("Open an image first.")));
    }

    @Test
    void anUnexpectedErrorNamesItsTypeAndMessageAndPointsAtTheLog() {
        String text = Failures.message(new UnsupportedOperationException("JsonWriter.jsonValue"));
        assertTrue(text.startsWith("Unexpected error: UnsupportedOperationException: JsonWriter.jsonValue"), text);
        assertTrue(text.contains("Show log"), text);
        assertTrue(Failures.message(new NullPointerException()).contains("NullPointerException"));
        String wrapped = Failures.message(new ExecutionException(new IllegalStateException("boom")));
        assertTrue(wrapped.contains("boom"), wrapped);
    }
}
