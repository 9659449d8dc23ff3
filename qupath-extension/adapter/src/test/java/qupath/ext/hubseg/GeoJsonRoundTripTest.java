package qupath.ext.hubseg;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.MultiPolygon;
import org.locationtech.jts.geom.Polygon;
import qupath.ext.hubseg.core.Features;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.io.GsonTools;
import qupath.lib.io.PathIO;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathROIObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.ROIs;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GeoJSON <-> PathObject through QuPath's real GsonTools, GeometryTools and PathIO (qupath-core 0.6.0). */
class GeoJsonRoundTripTest {

    /** A square ring (closed) from (x, y) with side s. */
    private static JsonArray ring(double x, double y, double s) {
        JsonArray ring = new JsonArray();
        double[][] corners = {{x, y}, {x + s, y}, {x + s, y + s}, {x, y + s}, {x, y}};
        for (double[] c : corners) {
            JsonArray point = new JsonArray();
            point.add(c[0]);
            point.add(c[1]);
            ring.add(point);
        }
        return ring;
    }

    private static JsonObject feature(JsonObject geometry, String objectType, String className, String model) {
        JsonObject properties = new JsonObject();
        properties.addProperty("objectType", objectType);
        JsonObject classification = new JsonObject();
        classification.addProperty("name", className);
        properties.add("classification", classification);
        JsonObject measurements = new JsonObject();
        measurements.addProperty(HubsegObjects.MEASUREMENT_ENERGY, 1.25);
        measurements.addProperty(HubsegObjects.MEASUREMENT_PROBABILITY, 0.875);
        properties.add("measurements", measurements);
        JsonObject metadata = new JsonObject();
        metadata.addProperty(HubsegObjects.META_MODEL, model);
        metadata.addProperty(HubsegObjects.META_ENERGY, "1.25");
        properties.add("metadata", metadata);
        JsonObject feature = new JsonObject();
        feature.addProperty("type", "Feature");
        feature.add("geometry", geometry);
        feature.add("properties", properties);
        return feature;
    }

    /** A 100 px square with a 20 px hole (area 9600), as an annotation of class Glomerulus. */
    static JsonObject polygonWithHole() {
        JsonArray rings = new JsonArray();
        rings.add(ring(0, 0, 100));
        rings.add(ring(40, 40, 20));
        JsonObject geometry = new JsonObject();
        geometry.addProperty("type", "Polygon");
        geometry.add("coordinates", rings);
        return feature(geometry, "annotation", HubsegObjects.CLASS_POSITIVE, "m1");
    }

    /** Two squares (10 px and 20 px: area 500), as a detection of class "Glomerulus (uncertain)". */
    static JsonObject multiPolygon() {
        JsonArray polygons = new JsonArray();
        JsonArray first = new JsonArray();
        first.add(ring(200, 200, 10));
        JsonArray second = new JsonArray();
        second.add(ring(300, 300, 20));
        polygons.add(first);
        polygons.add(second);
        JsonObject geometry = new JsonObject();
        geometry.addProperty("type", "MultiPolygon");
        geometry.add("coordinates", polygons);
        return feature(geometry, "detection", HubsegObjects.CLASS_UNCERTAIN, "m1");
    }

    private static Geometry jts(JsonObject geometry) {
        return GsonTools.getInstance().fromJson(geometry, Geometry.class);
    }

    @Test
    void featuresBecomeQuPathObjectsWithTypeClassMeasurementsAndMetadata() {
        List<PathObject> objects = QuPathObjects.fromFeatures(List.of(polygonWithHole(), multiPolygon()));
        assertEquals(2, objects.size());

        PathObject annotation = objects.get(0);
        assertTrue(annotation.isAnnotation());
        assertEquals(HubsegObjects.CLASS_POSITIVE, annotation.getPathClass().toString());
        assertEquals(9600.0, annotation.getROI().getArea(), 1e-6);
        Geometry holed = annotation.getROI().getGeometry();
        assertInstanceOf(Polygon.class, holed);
        assertEquals(1, ((Polygon) holed).getNumInteriorRing());
        assertEquals(1.25, annotation.getMeasurements().get(HubsegObjects.MEASUREMENT_ENERGY).doubleValue());
        assertEquals(0.875, annotation.getMeasurements().get(HubsegObjects.MEASUREMENT_PROBABILITY).doubleValue());
        assertEquals("m1", annotation.getMetadata().get(HubsegObjects.META_MODEL));
        assertEquals("pending", annotation.getMetadata().get(HubsegObjects.META_REVIEW));
        assertEquals(QuPathObjects.fingerprint(annotation), annotation.getMetadata().get(HubsegObjects.META_SHAPE));

        PathObject detection = objects.get(1);
        assertTrue(detection.isDetection());
        assertEquals(HubsegObjects.CLASS_UNCERTAIN, detection.getPathClass().toString());
        assertInstanceOf(MultiPolygon.class, detection.getROI().getGeometry());
        assertEquals(2, detection.getROI().getGeometry().getNumGeometries());
        assertEquals(500.0, detection.getROI().getArea(), 1e-6);
        assertTrue(QuPathObjects.isHubsegObject(detection));
        assertEquals(ReviewState.PENDING, QuPathObjects.reviewState(detection));
    }

    @Test
    void objectsBecomeTheSameFeaturesAgain() {
        List<JsonObject> features = List.of(polygonWithHole(), multiPolygon());
        List<PathObject> objects = QuPathObjects.fromFeatures(features);
        for (int i = 0; i < features.size(); i++) {
            JsonObject original = features.get(i);
            JsonObject back = QuPathObjects.toFeature(objects.get(i));
            assertTrue(jts(original.getAsJsonObject("geometry")).equalsTopo(jts(back.getAsJsonObject("geometry"))),
                    "geometry changed: " + back.get("geometry"));
            assertEquals(original.getAsJsonObject("geometry").get("type"), back.getAsJsonObject("geometry").get("type"));
            JsonObject properties = back.getAsJsonObject("properties");
            assertEquals(original.getAsJsonObject("properties").get("objectType"), properties.get("objectType"));
            assertEquals(Features.className(original), Features.className(back));
            assertEquals(Features.measurements(original), Features.measurements(back));
            Map<String, String> metadata = Features.metadata(back);
            assertEquals("m1", metadata.get(HubsegObjects.META_MODEL));
            assertEquals("1.25", metadata.get(HubsegObjects.META_ENERGY));
            assertEquals("pending", metadata.get(HubsegObjects.META_REVIEW));
            assertFalse(metadata.containsKey(HubsegObjects.META_SHAPE), "the edit fingerprint is internal");
            assertEquals(objects.get(i).getID().toString(), back.get("id").getAsString());
        }
    }

    @Test
    void anEditedShapeIsExportedAsCorrectedAndNonFiniteMeasurementsAreDropped() {
        PathObject p = QuPathObjects.fromFeatures(List.of(polygonWithHole())).get(0);
        String before = QuPathObjects.fingerprint(p);
        ((PathROIObject) p).setROI(ROIs.createRectangleROI(0, 0, 120, 100, ImagePlane.getDefaultPlane()));
        assertNotEquals(before, QuPathObjects.fingerprint(p));
        // (QuPath clears an object's measurements when its ROI changes: set them after the edit)
        p.getMeasurements().put("not a number", Double.NaN);
        p.getMeasurements().put("count", 3); // an Integer: getMeasurements() is a Map<String, Number>
        JsonObject back = QuPathObjects.toFeature(p);
        assertEquals("corrected", Features.metadata(back).get(HubsegObjects.META_REVIEW));
        Map<String, Double> measurements = Features.measurements(back);
        assertFalse(measurements.containsKey("not a number"));
        assertEquals(3.0, measurements.get("count"));
    }

    @Test
    void quPathsOwnGeoJsonReaderAndWriterAgreeWithOurs() throws Exception {
        List<PathObject> objects = QuPathObjects.fromFeatures(List.of(polygonWithHole(), multiPolygon()));
        // ours -> QuPath's reader (File > Import objects)
        JsonArray array = new JsonArray();
        objects.forEach(p -> array.add(QuPathObjects.toFeature(p)));
        JsonObject collection = new JsonObject();
        collection.addProperty("type", "FeatureCollection");
        collection.add("features", array);
        List<PathObject> read = PathIO.readObjectsFromGeoJSON(
                new ByteArrayInputStream(collection.toString().getBytes(StandardCharsets.UTF_8)));
        assertEquals(2, read.size());
        for (int i = 0; i < 2; i++) {
            PathObject a = objects.get(i);
            PathObject b = read.get(i);
            assertEquals(a.isDetection(), b.isDetection());
            assertEquals(a.getPathClass(), b.getPathClass());
            assertEquals(a.getROI().getArea(), b.getROI().getArea(), 1e-6);
            assertEquals(a.getMeasurements().get(HubsegObjects.MEASUREMENT_ENERGY).doubleValue(),
                    b.getMeasurements().get(HubsegObjects.MEASUREMENT_ENERGY).doubleValue());
            assertEquals("m1", b.getMetadata().get(HubsegObjects.META_MODEL));
        }
        // QuPath's writer (File > Export objects) -> ours
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PathIO.exportObjectsAsGeoJSON(out, objects, PathIO.GeoJsonExportOptions.FEATURE_COLLECTION);
        JsonObject exported = JsonParser.parseString(out.toString(StandardCharsets.UTF_8)).getAsJsonObject();
        List<JsonObject> features = new ArrayList<>();
        exported.getAsJsonArray("features").forEach(f -> features.add(f.getAsJsonObject()));
        List<PathObject> again = QuPathObjects.fromFeatures(features);
        for (int i = 0; i < 2; i++) {
            assertEquals(objects.get(i).isDetection(), again.get(i).isDetection());
            assertEquals(objects.get(i).getPathClass(), again.get(i).getPathClass());
            assertTrue(objects.get(i).getROI().getGeometry().equalsTopo(again.get(i).getROI().getGeometry()));
            assertEquals(objects.get(i).getMeasurements(), again.get(i).getMeasurements());
            assertEquals("m1", again.get(i).getMetadata().get(HubsegObjects.META_MODEL));
        }
    }

    @Test
    void readOnlyChecksDoNotCreateMetadata() {
        PathObject user = PathObjects.createAnnotationObject(
                ROIs.createEllipseROI(10, 10, 50, 40, ImagePlane.getDefaultPlane()));
        assertFalse(QuPathObjects.isHubsegObject(user));
        assertEquals(ReviewState.PENDING, QuPathObjects.reviewState(user));
        assertTrue(QuPathObjects.metadata(user).isEmpty());
        assertFalse(user.hasMetadata(), "a read-only check created a metadata map");
        JsonObject geometry = QuPathObjects.geometry(user.getROI()); // once threw UnsupportedOperationException
        assertEquals("Polygon", geometry.get("type").getAsString());
        assertNull(QuPathObjects.toFeature(user).getAsJsonObject("properties").get("classification"));
    }
}
