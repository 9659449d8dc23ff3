package qupath.ext.hubseg.core;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Polls {@code GET /v1/jobs/{id}} until the job is final, forwarding cancel requests to the server. */
public final class JobPoller {

    private final HubsegClient client;
    private final Duration interval;

    public JobPoller(HubsegClient client, Duration interval) {
        this.client = client;
        this.interval = interval == null ? Duration.ofMillis(500) : interval;
    }

    /**
     * @return the final status (succeeded, failed or cancelled)
     */
    public JobStatus await(String jobId, JobListener listener, BooleanSupplier cancelRequested) {
        boolean cancelSent = false;
        while (true) {
            JobStatus status = client.job(jobId);
            if (listener != null) {
                listener.update(status);
            }
            if (status.state().isFinal()) {
                return status;
            }
            if (!cancelSent && cancelRequested != null && cancelRequested.getAsBoolean()) {
                JobStatus afterCancel = client.cancel(jobId);
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
                client.cancel(jobId);
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
