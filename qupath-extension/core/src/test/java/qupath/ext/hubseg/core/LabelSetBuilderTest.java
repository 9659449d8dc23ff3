package qupath.ext.hubseg.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class LabelSetBuilderTest {

    /** A feature shaped like QuPath's GeoJSON export of a PathObject. */
    static JsonObject feature(String className, String review, boolean proposal, JsonObject geometry, boolean edited) {
        JsonObject f = new JsonObject();
        f.addProperty("type", "Feature");
        f.addProperty("id", java.util.UUID.randomUUID().toString());
        f.add("geometry", geometry);
        JsonObject p = new JsonObject();
        p.addProperty("objectType", "annotation");
        if (className != null) {
            JsonObject c = new JsonObject();
            c.addProperty("name", className);
            JsonArray color = new JsonArray();
            color.add(1);
            color.add(2);
            color.add(3);
            c.add("color", color);
            p.add("classification", c);
        }
        if (proposal) {
            JsonObject m = new JsonObject();
            m.addProperty(HubsegObjects.META_MODEL, "tiny-v1");
            if (review != null) {
                m.addProperty(HubsegObjects.META_REVIEW, review);
            }
            m.addProperty(HubsegObjects.META_SHAPE, edited ? "0000" : Geo.fingerprint(geometry));
            p.add("metadata", m);
        }
        f.add("properties", p);
        return f;
    }

    private static List<String> classes(JsonObject labelSet) {
        List<String> names = new ArrayList<>();
        for (var f : labelSet.getAsJsonObject("features").getAsJsonArray("features")) {
            names.add(f.getAsJsonObject().getAsJsonObject("properties").getAsJsonObject("classification")
                    .get("name").getAsString());
        }
        return names;
    }

    @Test
    void assemblesTheDocumentedFormat() {
        JsonObject region = Geo.rectangle(0, 0, 500, 400);
        LabelSetBuilder.Result result = new LabelSetBuilder()
                .imagePath("/slides/a.tif").pixelSizeUm(0.5).addRegion(region).model("tiny-v1")
                .created(Instant.parse("2026-01-02T03:04:05.678Z"))
                .addFeature(feature("Glomerulus", "accepted", true, Geo.rectangle(10, 10, 50, 50), false))
                .addFeature(feature("Glomerulus", "pending", true, Geo.rectangle(100, 10, 50, 50), true))
                .addFeature(feature("Glomerulus", "rejected", true, Geo.rectangle(200, 10, 50, 50), false))
                .addFeature(feature("Glomerulus", null, false, Geo.rectangle(300, 10, 50, 50), false))
                .addFeature(feature("Rejected", null, false, Geo.rectangle(10, 200, 50, 50), false))
                .addFeature(feature(null, null, false, Geo.rectangle(10, 300, 50, 50), false))
                .addFeature(feature("Glomerulus (uncertain)", "accepted", true, Geo.rectangle(400, 10, 50, 50), false))
                .addFeature(feature("Glomerulus (uncertain)", "pending", true, Geo.rectangle(400, 100, 50, 50), false))
                .build();
        JsonObject set = result.labelSet();
        assertEquals("hubseg-labelset/1", set.get("format").getAsString());
        assertEquals("/slides/a.tif", set.getAsJsonObject("image").get("path").getAsString());
        assertEquals(0.5, set.get("pixel_size_um").getAsDouble());
        assertEquals(1, set.getAsJsonArray("regions").size());
        assertEquals("Polygon", set.getAsJsonArray("regions").get(0).getAsJsonObject().get("type").getAsString());
        assertEquals("qupath", set.get("source").getAsString());
        assertEquals("tiny-v1", set.get("model").getAsString());
        assertEquals("2026-01-02T03:04:05Z", set.get("created").getAsString());
        assertEquals("FeatureCollection", set.getAsJsonObject("features").get("type").getAsString());
        assertEquals(List.of("Glomerulus", "Glomerulus", "Rejected", "Glomerulus", "Rejected", "Glomerulus",
                "Glomerulus (uncertain)"), classes(set));

        var features = set.getAsJsonObject("features").getAsJsonArray("features");
        JsonObject edited = features.get(1).getAsJsonObject().getAsJsonObject("properties").getAsJsonObject("metadata");
        assertEquals("corrected", edited.get(HubsegObjects.META_REVIEW).getAsString(), "edited shape counts as corrected");
        assertFalse(edited.has(HubsegObjects.META_SHAPE), "extension-internal key is not exported");

        LabelSetBuilder.Summary s = result.summary();
        assertEquals(4, s.positives(), "accepted, corrected, user-drawn, accepted-uncertain");
        assertEquals(2, s.negatives());
        assertEquals(0, s.pendingIncluded());
        assertEquals(1, s.undecided(), "a pending uncertain proposal is never a positive");
        assertEquals(1, s.ignored());
        assertTrue(s.describe().startsWith("1 region(s): 4 glomeruli"), s.describe());
    }

    @Test
    void pendingProposalsFollowTheIncludePendingChoice() {
        JsonObject pending = feature("Glomerulus", "pending", true, Geo.rectangle(1, 1, 5, 5), false);
        LabelSetBuilder.Result included = new LabelSetBuilder().uploadId("0123456789abcdef0123456789abcdef")
                .pixelSizeUm(1).addRegion(Geo.rectangle(0, 0, 10, 10)).addFeature(pending).build();
        assertEquals(1, included.summary().pendingIncluded());
        assertEquals("0123456789abcdef0123456789abcdef",
                included.labelSet().getAsJsonObject("image").get("upload_id").getAsString());
        LabelSetBuilder.Result excluded = new LabelSetBuilder().imagePath("/a.tif").pixelSizeUm(1)
                .addRegion(Geo.rectangle(0, 0, 10, 10)).addFeature(pending).includePending(false).build();
        assertEquals(0, excluded.summary().positives());
        assertEquals(1, excluded.summary().undecided());
        assertEquals(List.of("Glomerulus (uncertain)"), classes(excluded.labelSet()), "undecided, not background");
        assertTrue(excluded.summary().describe().contains("1 undecided"), excluded.summary().describe());
    }

    @Test
    void refusesIncompleteInputWithReadableMessages() {
        JsonObject region = Geo.rectangle(0, 0, 10, 10);
        assertTrue(assertThrows(HubsegException.class, () -> new LabelSetBuilder().pixelSizeUm(1).addRegion(region).build())
                .getMessage().contains("image"));
        assertTrue(assertThrows(HubsegException.class, () -> new LabelSetBuilder().imagePath("/a").addRegion(region).build())
                .getMessage().contains("pixel size"));
        assertTrue(assertThrows(HubsegException.class, () -> new LabelSetBuilder().imagePath("/a").pixelSizeUm(1).build())
                .getMessage().contains("No reviewed region"));
        JsonObject point = new JsonObject();
        point.addProperty("type", "Point");
        assertTrue(assertThrows(HubsegException.class, () -> new LabelSetBuilder().addRegion(point))
                .getMessage().contains("polygon"));
    }

    @Test
    void projectFileNameIsSafeAndUnderHubsegLabels() {
        String name = LabelSetBuilder.projectFileName("slide 1/../x?.ome.tif", Instant.parse("2026-03-04T05:06:07Z"));
        assertEquals("hubseg/labels/slide_1_.._x_.ome.tif-20260304-050607.json", name);
        assertFalse(name.substring("hubseg/labels/".length()).contains("/"));
        assertTrue(LabelSetBuilder.projectFileName(null, Instant.EPOCH).startsWith("hubseg/labels/image-"));
    }

    @Test
    void fingerprintIgnoresTinyRoundingButSeesEdits() {
        JsonObject a = Geo.rectangle(10, 10, 50, 50);
        JsonObject b = Geo.rectangle(10.0001, 10, 50, 50);
        JsonObject c = Geo.rectangle(11, 10, 50, 50);
        assertEquals(Geo.fingerprint(a), Geo.fingerprint(b));
        assertNotEquals(Geo.fingerprint(a), Geo.fingerprint(c));
        assertEquals("", Geo.fingerprint(null));
    }
}
