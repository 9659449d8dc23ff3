package qupath.ext.hubseg;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.locationtech.jts.geom.Geometry;
import qupath.ext.hubseg.core.Features;
import qupath.ext.hubseg.core.Geo;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.common.ColorTools;
import qupath.lib.io.GsonTools;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.GeometryTools;
import qupath.lib.roi.interfaces.ROI;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Conversion between QuPath objects and the server's GeoJSON, through QuPath's own GeoJSON support
 * ({@code qupath.lib.io.GsonTools}, whose Gson has a type adapter for JTS {@code Geometry}, and
 * {@code qupath.lib.roi.GeometryTools.geometryToROI}).
 * Metadata uses {@code PathObject.getMetadata()} (public since QuPath 0.5, {@code MinimalMetadataStore}), so the
 * review state is saved with the image data in the project. Read-only checks go through {@link #metadata}:
 * {@code getMetadata()} creates an object's metadata map on first call, {@code hasMetadata()} does not.
 */
final class QuPathObjects {

    private QuPathObjects() {
    }

    /** A level-0 GeoJSON geometry of a ROI. */
    static JsonObject geometry(ROI roi) {
        // Not toJsonTree: QuPath's geometry adapter writes with JsonWriter.jsonValue, which Gson's tree writer
        // rejects (UnsupportedOperationException, gson 2.13). Text and back works with every Gson version.
        return JsonParser.parseString(GsonTools.getInstance().toJson(roi.getGeometry(), Geometry.class))
                .getAsJsonObject();
    }

    /** The object's metadata for reading (an empty map when it has none; never creates one). */
    static Map<String, String> metadata(PathObject pathObject) {
        return pathObject.hasMetadata() ? pathObject.getMetadata() : Map.of();
    }

    /** Fingerprint of an object's current shape (see {@link Geo#fingerprint}). */
    static String fingerprint(PathObject pathObject) {
        return pathObject.getROI() == null ? "" : Geo.fingerprint(geometry(pathObject.getROI()));
    }

    /** True for objects hubseg proposed. */
    static boolean isHubsegObject(PathObject pathObject) {
        return HubsegObjects.isHubsegObject(metadata(pathObject));
    }

    /** The object's class name, "" when it has none. */
    static String className(PathObject pathObject) {
        return pathObject.getPathClass() == null ? "" : pathObject.getPathClass().toString();
    }

    /** The review state (see {@link HubsegObjects#effectiveState}): edits and reclassifications count. */
    static ReviewState reviewState(PathObject pathObject) {
        return HubsegObjects.effectiveState(metadata(pathObject), className(pathObject), fingerprint(pathObject));
    }

    /** Whether a new detection may replace the object (see {@link HubsegObjects#isReplaceable}). */
    static boolean isReplaceable(PathObject pathObject) {
        return HubsegObjects.isReplaceable(metadata(pathObject), className(pathObject), fingerprint(pathObject));
    }

    /**
     * QuPath objects for the server's features: the geometry goes through QuPath's GeoJSON geometry adapter
     * ({@code GsonTools}) and {@code GeometryTools.geometryToROI}; {@code objectType} picks annotation or detection;
     * class, measurements and metadata are set explicitly, so nothing depends on which feature properties a given
     * QuPath version reads. The proposed shape's fingerprint is stored for edit detection.
     */
    static List<PathObject> fromFeatures(List<JsonObject> features) {
        List<PathObject> objects = new ArrayList<>();
        for (JsonObject feature : features) {
            Geometry geometry = GsonTools.getInstance().fromJson(feature.get("geometry"), Geometry.class);
            ROI roi = GeometryTools.geometryToROI(geometry, ImagePlane.getDefaultPlane());
            String className = Features.className(feature);
            PathClass pathClass = className.isEmpty() ? null : PathClass.fromString(className);
            JsonObject properties = feature.getAsJsonObject("properties");
            boolean detection = properties != null && properties.has("objectType")
                    && "detection".equals(properties.get("objectType").getAsString());
            PathObject pathObject = detection ? PathObjects.createDetectionObject(roi, pathClass)
                    : PathObjects.createAnnotationObject(roi, pathClass);
            // PathObject.getMeasurements(): map view of the MeasurementList (QuPath 0.4+)
            pathObject.getMeasurements().putAll(Features.measurements(feature));
            Map<String, String> metadata = pathObject.getMetadata();
            metadata.putAll(Features.metadata(feature));
            metadata.putIfAbsent(HubsegObjects.META_REVIEW, ReviewState.PENDING.metadataValue());
            metadata.put(HubsegObjects.META_SHAPE, fingerprint(pathObject));
            objects.add(pathObject);
        }
        return objects;
    }

    /**
     * The object as a QuPath-style GeoJSON Feature for a label set (geometry by QuPath's GeoJSON adapter; class,
     * measurements, metadata), with its effective review state, so an edit made after the last review still counts
     * as a correction.
     */
    static JsonObject toFeature(PathObject pathObject) {
        JsonObject properties = new JsonObject();
        properties.addProperty("objectType", pathObject.isDetection() ? "detection" : "annotation");
        if (pathObject.getPathClass() != null) {
            properties.add("classification", classification(pathObject.getPathClass()));
        }
        JsonObject measurements = new JsonObject();
        pathObject.getMeasurements().forEach((name, value) -> {
            // getMeasurements() is a Map<String, Number>; JSON has no NaN/Infinity
            if (value != null && Double.isFinite(value.doubleValue())) {
                measurements.addProperty(name, value.doubleValue());
            }
        });
        properties.add("measurements", measurements);
        JsonObject metadata = new JsonObject();
        metadata(pathObject).forEach(metadata::addProperty);
        if (isHubsegObject(pathObject)) {
            metadata.addProperty(HubsegObjects.META_REVIEW, reviewState(pathObject).metadataValue());
            metadata.remove(HubsegObjects.META_SHAPE); // the state above already accounts for edits
        }
        properties.add("metadata", metadata);
        JsonObject feature = new JsonObject();
        feature.addProperty("type", "Feature");
        feature.addProperty("id", pathObject.getID().toString());
        feature.add("geometry", geometry(pathObject.getROI()));
        feature.add("properties", properties);
        return feature;
    }

    /**
     * {@code {"name": ..., "color": [r, g, b]}}: QuPath's own GeoJSON reader (0.6) needs the colour as well as
     * the name, so the label sets and anything else written here also open with File > Import objects.
     */
    static JsonObject classification(PathClass pathClass) {
        JsonObject classification = new JsonObject();
        classification.addProperty("name", pathClass.toString());
        Integer rgb = pathClass.getColor();
        int packed = rgb == null ? ColorTools.packRGB(128, 128, 128) : rgb;
        JsonArray color = new JsonArray();
        color.add(ColorTools.red(packed));
        color.add(ColorTools.green(packed));
        color.add(ColorTools.blue(packed));
        classification.add("color", color);
        return classification;
    }

    /** A review-panel row for a hubseg object. */
    static ReviewItem reviewItem(PathObject pathObject) {
        return ReviewItem.of(pathObject.getID().toString(), className(pathObject), pathObject.getMeasurements(),
                Double.NaN);
    }

    /** Writes a review decision onto the object (metadata; class for accept/reject). */
    static void applyReview(PathObject pathObject, ReviewState state) {
        pathObject.getMetadata().put(HubsegObjects.META_REVIEW, state.metadataValue());
        if (state == ReviewState.ACCEPTED || state == ReviewState.CORRECTED) {
            // an accepted "Glomerulus (uncertain)" becomes a Glomerulus
            pathObject.setPathClass(PathClass.fromString(HubsegObjects.CLASS_POSITIVE));
        } else if (state == ReviewState.REJECTED) {
            pathObject.setPathClass(PathClass.fromString(HubsegObjects.CLASS_REJECTED, ColorTools.packRGB(128, 128, 128)));
        }
    }
}
