package qupath.ext.hubseg.core;

/** What "Reject" does to an object in the review panel. */
public enum RejectBehaviour {
    /** Remove the object from the image. */
    DELETE,
    /** Keep it with class {@code Rejected}; exported as an explicit negative for training. */
    KEEP_AS_REJECTED
}
