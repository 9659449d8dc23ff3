package qupath.ext.hubseg.core;

/** Receives every polled status of a job (called on the polling thread). */
@FunctionalInterface
public interface JobListener {
    void update(JobStatus status);
}
