package qupath.ext.hubseg.core;

import java.util.Locale;
import java.util.Map;

/**
 * One row of the review panel: a hubseg object's identity and measurements.
 *
 * @param id        the QuPath object's id (UUID text)
 * @param uncertain   true when the object failed the model's gate or is classified as uncertain
 * @param reviewScore probability that the object is a true glomerulus ("hubseg review score"), NaN without one
 * @param referenceRank the object's {@link HubsegObjects#MEASUREMENT_REFERENCE_RANK} (1 = most certain), or
 *                      {@link Long#MAX_VALUE} when it is not one of the image's reference objects
 */
public record ReviewItem(String id, String className, double energy, double probability, double areaUm2,
                         long rank, boolean uncertain, double reviewScore, long referenceRank) {

    /** An item that is not a reference object. */
    public ReviewItem(String id, String className, double energy, double probability, double areaUm2,
                      long rank, boolean uncertain, double reviewScore) {
        this(id, className, energy, probability, areaUm2, rank, uncertain, reviewScore, Long.MAX_VALUE);
    }

    /** An item without a review score (models whose card has no review model). */
    public ReviewItem(String id, String className, double energy, double probability, double areaUm2,
                      long rank, boolean uncertain) {
        this(id, className, energy, probability, areaUm2, rank, uncertain, Double.NaN);
    }

    /**
     * Builds an item from an object's class, measurements and metadata, as read from QuPath.
     *
     * @param energyGateCutoff the model's cutoff (objects with energy below it are uncertain), or NaN
     */
    public static ReviewItem of(String id, String className, Map<String, ? extends Number> measurements,
                                double energyGateCutoff) {
        double energy = value(measurements, HubsegObjects.MEASUREMENT_ENERGY);
        double gate = value(measurements, HubsegObjects.MEASUREMENT_GATE);
        boolean uncertain = className != null && className.toLowerCase(Locale.ROOT).contains("uncertain");
        if (!Double.isNaN(gate)) {
            // "hubseg energy gate" is the cutoff the object was judged by; below it means uncertain
            uncertain |= !Double.isNaN(energy) && energy < gate;
        } else if (!Double.isNaN(energyGateCutoff)) {
            uncertain |= !Double.isNaN(energy) && energy < energyGateCutoff;
        }
        double rank = value(measurements, HubsegObjects.MEASUREMENT_RANK);
        double referenceRank = value(measurements, HubsegObjects.MEASUREMENT_REFERENCE_RANK);
        return new ReviewItem(id, className == null ? "" : className, energy,
                value(measurements, HubsegObjects.MEASUREMENT_PROBABILITY),
                value(measurements, HubsegObjects.MEASUREMENT_AREA),
                Double.isNaN(rank) ? Long.MAX_VALUE : (long) rank, uncertain,
                value(measurements, HubsegObjects.MEASUREMENT_REVIEW_SCORE),
                Double.isNaN(referenceRank) ? Long.MAX_VALUE : (long) referenceRank);
    }

    /** Whether the detection marked this object as one of the image's most certain (a reference). */
    public boolean isReference() {
        return referenceRank != Long.MAX_VALUE;
    }

    private static double value(Map<String, ? extends Number> measurements, String name) {
        if (measurements == null) {
            return Double.NaN;
        }
        Number n = measurements.get(name);
        return n == null ? Double.NaN : n.doubleValue();
    }
}
