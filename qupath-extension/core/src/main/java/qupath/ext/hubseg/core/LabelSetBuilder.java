package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Locale;

/**
 * Assembles a {@code hubseg-labelset/1} document (docs/architecture.md) from the reviewed regions and
 * the QuPath GeoJSON features inside them:
 * <ul>
 * <li>accepted or corrected proposals and the user's own {@code Glomerulus} objects: positives ({@code Glomerulus});</li>
 * <li>rejected proposals and the user's {@code Rejected} objects: explicit negatives ({@code Rejected});</li>
 * <li>proposals nobody reviewed: positives when {@link #includePending} is set and the server was confident,
 *     otherwise class {@code Glomerulus (uncertain)}, whose pixels training ignores (never background);</li>
 * <li>anything else (other classes, unclassified annotations, proposals the user reclassified): left out.</li>
 * </ul>
 */
public final class LabelSetBuilder {

    public static final String FORMAT = "hubseg-labelset/1";

    /** What went into the label set, for the confirmation message. */
    public record Summary(int positives, int negatives, int pendingIncluded, int undecided, int ignored,
                          int regions) {
        public String describe() {
            return regions + " region(s): " + positives + " glomeruli (" + pendingIncluded
                    + " of them not reviewed), " + negatives + " rejected"
                    + (undecided > 0 ? ", " + undecided + " undecided (ignored in training)" : "")
                    + (ignored > 0 ? ", " + ignored + " other object(s) left out" : "");
        }
    }

    /** The document plus its summary. */
    public record Result(JsonObject labelSet, Summary summary) {
    }

    private String imagePath;
    private String uploadId;
    private double pixelSizeUm = Double.NaN;
    private final List<JsonObject> regions = new ArrayList<>();
    private final List<JsonObject> features = new ArrayList<>();
    private String model;
    private String source = "qupath";
    private String positiveClass = HubsegObjects.CLASS_POSITIVE;
    private boolean includePending = true;
    private Instant created = Instant.now();

    public LabelSetBuilder imagePath(String path) {
        this.imagePath = path;
        this.uploadId = null;
        return this;
    }

    public LabelSetBuilder uploadId(String id) {
        this.uploadId = id;
        this.imagePath = null;
        return this;
    }

    public LabelSetBuilder pixelSizeUm(double value) {
        this.pixelSizeUm = value;
        return this;
    }

    /** A reviewed region: a GeoJSON Polygon or MultiPolygon in level-0 px. */
    public LabelSetBuilder addRegion(JsonObject geometry) {
        String type = Json.string(geometry, "type", "");
        if (!type.equals("Polygon") && !type.equals("MultiPolygon")) {
            throw new HubsegException("A reviewed region must be a polygon (got " + (type.isEmpty() ? "nothing" : type)
                    + "); draw it with the rectangle, polygon or brush tool.");
        }
        regions.add(geometry);
        return this;
    }

    /** A QuPath GeoJSON Feature (as written by QuPath's GsonTools) found inside the regions. */
    public LabelSetBuilder addFeature(JsonObject feature) {
        features.add(feature);
        return this;
    }

    public LabelSetBuilder model(String name) {
        this.model = name;
        return this;
    }

    public LabelSetBuilder source(String value) {
        this.source = value;
        return this;
    }

    public LabelSetBuilder positiveClass(String name) {
        this.positiveClass = name;
        return this;
    }

    /** Whether proposals nobody reviewed count as positives (the user declared the region reviewed). */
    public LabelSetBuilder includePending(boolean value) {
        this.includePending = value;
        return this;
    }

    public LabelSetBuilder created(Instant time) {
        this.created = time;
        return this;
    }

    public Result build() {
        if (imagePath == null && uploadId == null) {
            throw new HubsegException("The label set needs the image: its file path or an upload id.");
        }
        if (!(pixelSizeUm > 0 && Double.isFinite(pixelSizeUm))) {
            throw new HubsegException("The image has no pixel size in µm; set it in QuPath (Image tab) before exporting.");
        }
        if (regions.isEmpty()) {
            throw new HubsegException("No reviewed region: select the annotation(s) you reviewed, or run detection"
                    + " in a region first.");
        }
        int positives = 0;
        int negatives = 0;
        int pendingIncluded = 0;
        int undecided = 0;
        int ignored = 0;
        JsonArray out = new JsonArray();
        for (JsonObject feature : features) {
            Map<String, String> metadata = Features.metadata(feature);
            String className = Features.className(feature);
            JsonObject geometry = Json.object(feature, "geometry");
            ReviewState state = HubsegObjects.effectiveState(metadata, className, Geo.fingerprint(geometry));
            boolean proposal = HubsegObjects.isHubsegObject(metadata);
            String exportClass;
            boolean uncertainClass = HubsegObjects.CLASS_UNCERTAIN.equals(className);
            if (proposal && state == ReviewState.CORRECTED && !uncertainClass
                    && !HubsegObjects.CLASS_POSITIVE.equals(className)) {
                ignored++; // reclassified (or unclassified) by the user: neither a glomerulus nor a negative
                continue;
            } else if ((proposal && state == ReviewState.REJECTED) || HubsegObjects.CLASS_REJECTED.equals(className)) {
                exportClass = HubsegObjects.CLASS_REJECTED;
                negatives++;
            } else if (proposal && state == ReviewState.PENDING) {
                if (includePending && !uncertainClass) {
                    exportClass = positiveClass;
                    pendingIncluded++;
                    positives++;
                } else {
                    exportClass = HubsegObjects.CLASS_UNCERTAIN;
                    undecided++;
                }
            } else if (proposal || positiveClass.equals(className)) {
                exportClass = positiveClass; // accepted/corrected (even if proposed as uncertain) or drawn by the user
                positives++;
            } else if (uncertainClass) {
                exportClass = HubsegObjects.CLASS_UNCERTAIN;
                undecided++;
            } else {
                ignored++;
                continue;
            }
            out.add(cleanFeature(feature, exportClass, proposal ? state : null));
        }
        JsonObject collection = new JsonObject();
        collection.addProperty("type", "FeatureCollection");
        collection.add("features", out);

        JsonObject labelSet = new JsonObject();
        labelSet.addProperty("format", FORMAT);
        JsonObject image = new JsonObject();
        if (imagePath != null) {
            image.addProperty("path", imagePath);
        } else {
            image.addProperty("upload_id", uploadId);
        }
        labelSet.add("image", image);
        labelSet.addProperty("pixel_size_um", pixelSizeUm);
        JsonArray regionArray = new JsonArray();
        regions.forEach(regionArray::add);
        labelSet.add("regions", regionArray);
        labelSet.add("features", collection);
        if (model != null && !model.isBlank()) {
            labelSet.addProperty("model", model);
        }
        labelSet.addProperty("source", source);
        labelSet.addProperty("created", DateTimeFormatter.ISO_INSTANT.format(created.truncatedTo(ChronoUnit.SECONDS)));
        return new Result(labelSet, new Summary(positives, negatives, pendingIncluded, undecided, ignored,
                regions.size()));
    }

    /**
     * File name for the copy written into the QuPath project: {@code hubseg/labels/<image>-<time>.json}
     * relative to the project folder, with the image name reduced to safe characters.
     */
    public static String projectFileName(String imageName, Instant time) {
        String safe = (imageName == null || imageName.isBlank() ? "image" : imageName)
                .replaceAll("[^A-Za-z0-9._-]+", "_").replaceAll("_+", "_");
        if (safe.length() > 80) {
            safe = safe.substring(0, 80);
        }
        String stamp = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss", Locale.ROOT).withZone(ZoneOffset.UTC).format(time);
        return "hubseg/labels/" + safe + "-" + stamp + ".json";
    }

    private static JsonObject cleanFeature(JsonObject feature, String className, ReviewState state) {
        JsonObject copy = feature.deepCopy();
        JsonObject properties = Json.object(copy, "properties");
        if (properties == null) {
            properties = new JsonObject();
            copy.add("properties", properties);
        }
        JsonObject classification = Json.object(properties, "classification");
        if (classification == null || !className.equals(Json.string(classification, "name", null))) {
            classification = new JsonObject();
            classification.addProperty("name", className);
            JsonArray color = new JsonArray();
            int[] rgb = className.equals(HubsegObjects.CLASS_REJECTED) ? new int[]{128, 128, 128}
                    : className.equals(HubsegObjects.CLASS_UNCERTAIN) ? new int[]{230, 160, 0} : new int[]{0, 200, 0};
            for (int c : rgb) {
                color.add(c);
            }
            classification.add("color", color);
            properties.add("classification", classification);
        }
        JsonObject metadata = Json.object(properties, "metadata");
        if (metadata != null) {
            metadata.remove(HubsegObjects.META_SHAPE);
            if (state != null) {
                metadata.addProperty(HubsegObjects.META_REVIEW, state.metadataValue());
            }
        }
        return copy;
    }
}
