package qupath.ext.hubseg.core;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

/** Polls {@code GET /v1/jobs/{id}} until the job is final, forwarding cancel requests to the server. */
public final class JobPoller {

    private final Function<String, JobStatus> status;
    private final Function<String, JobStatus> cancel;
    private final Duration interval;

    /**
     * @param status {@code GET /v1/jobs/{id}} ({@link HubsegClient#job})
     * @param cancel {@code POST /v1/jobs/{id}/cancel} ({@link HubsegClient#cancel})
     */
    public JobPoller(Function<String, JobStatus> status, Function<String, JobStatus> cancel, Duration interval) {
        this.status = status;
        this.cancel = cancel;
        this.interval = interval == null ? Duration.ofMillis(500) : interval;
    }

    /**
     * @return the final status (succeeded, failed or cancelled)
     */
    public JobStatus await(String jobId, JobListener listener, BooleanSupplier cancelRequested) {
        boolean cancelSent = false;
        while (true) {
            JobStatus current = status.apply(jobId);
            if (listener != null) {
                listener.update(current);
            }
            if (current.state().isFinal()) {
                return current;
            }
            if (!cancelSent && cancelRequested != null && cancelRequested.getAsBoolean()) {
                JobStatus afterCancel = cancel.apply(jobId);
                cancelSent = true;
                if (listener != null) {
                    listener.update(afterCancel);
                }
                if (afterCancel.state().isFinal()) {
                    return afterCancel;
                }
            }
            try {
                Thread.sleep(interval.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                cancel.apply(jobId);
                throw new HubsegException("Stopped waiting for job " + jobId + "; it was cancelled on the server.", e);
            }
        }
    }

    /** Throws a readable error unless the job succeeded. */
    public static JobStatus requireSucceeded(JobStatus status) {
        return switch (status.state()) {
            case SUCCEEDED -> status;
            case CANCELLED -> throw new HubsegException("The " + status.kind() + " job was cancelled.");
            case FAILED -> throw new HubsegException("The " + status.kind() + " job failed: "
                    + (status.error() == null ? "no reason given (see the server's terminal)" : status.error()));
            default -> throw new HubsegException("The job " + status.id() + " is still " + status.state().wireName() + ".");
        };
    }
}
