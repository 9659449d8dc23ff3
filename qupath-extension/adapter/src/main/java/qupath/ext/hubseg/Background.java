package qupath.ext.hubseg;

import java.util.concurrent.Callable;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * The extension's two background threads (headless, so it is tested): long work (detection, export, training)
 * runs on the "jobs" thread, one at a time; short requests (Status, Load models, the training dialog's lists) on
 * their own thread, so they never wait behind a long detection. Results and failures are handed to
 * {@code deliver} (the JavaFX thread in QuPath); a failure of the result handler is reported like any other.
 */
final class Background {

    private final Executor deliver;
    private final ExecutorService jobs = Executors.newSingleThreadExecutor(daemon("hubseg-jobs"));
    private final ExecutorService quick = Executors.newSingleThreadExecutor(daemon("hubseg-requests"));

    Background(Executor deliver) {
        this.deliver = deliver;
    }

    /** Daemon threads: a job still running never keeps QuPath from exiting. */
    private static ThreadFactory daemon(String name) {
        return runnable -> {
            Thread thread = new Thread(runnable, name);
            thread.setDaemon(true);
            return thread;
        };
    }

    /** Long work on the jobs thread. */
    <T> void job(Callable<T> work, Consumer<T> onSuccess, Consumer<Throwable> onError) {
        submit(jobs, work, onSuccess, onError);
    }

    /** A short request, which must not queue behind a running job. */
    <T> void quick(Callable<T> work, Consumer<T> onSuccess, Consumer<Throwable> onError) {
        submit(quick, work, onSuccess, onError);
    }

    private <T> void submit(ExecutorService executor, Callable<T> work, Consumer<T> onSuccess,
                            Consumer<Throwable> onError) {
        executor.submit(() -> {
            try {
                T result = work.call();
                deliver.execute(() -> {
                    try {
                        onSuccess.accept(result);
                    } catch (RuntimeException | Error e) {
                        onError.accept(e);
                    }
                });
            } catch (Throwable t) {
                deliver.execute(() -> onError.accept(t));
            }
        });
    }
}
