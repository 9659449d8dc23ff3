package qupath.ext.hubseg;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The extension's background threads, delivering on the calling thread instead of JavaFX's. */
class BackgroundTest {

    @Test
    void aShortRequestDoesNotWaitBehindALongJob() throws Exception {
        Background background = new Background(Runnable::run);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<String> job = new CompletableFuture<>();
        CompletableFuture<String> status = new CompletableFuture<>();
        background.job(() -> {
            release.await(); // a detection that takes long
            return "detected";
        }, job::complete, job::completeExceptionally);
        background.quick(() -> "server ok", status::complete, status::completeExceptionally);
        assertEquals("server ok", status.get(10, TimeUnit.SECONDS));
        assertFalse(job.isDone());
        release.countDown();
        assertEquals("detected", job.get(10, TimeUnit.SECONDS));
    }

    @Test
    void failuresOfTheWorkAndOfTheResultHandlerAreReported() throws Exception {
        Background background = new Background(Runnable::run);
        CompletableFuture<Throwable> workFailed = new CompletableFuture<>();
        background.job(() -> {
            throw new IllegalStateException("server gone");
        }, result -> { }, workFailed::complete);
        assertEquals("server gone", workFailed.get(10, TimeUnit.SECONDS).getMessage());

        CompletableFuture<Throwable> handlerFailed = new CompletableFuture<>();
        background.quick(() -> "x", result -> {
            throw new UnsupportedOperationException("bug in the dialog");
        }, handlerFailed::complete);
        assertTrue(handlerFailed.get(10, TimeUnit.SECONDS) instanceof UnsupportedOperationException);
    }
}
