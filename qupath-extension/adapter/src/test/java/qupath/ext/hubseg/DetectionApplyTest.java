package qupath.ext.hubseg;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qupath.ext.hubseg.core.Geo;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathROIObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.objects.hierarchy.PathObjectHierarchy;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.ROIs;

import com.google.gson.JsonObject;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Detection results applied to a real PathObjectHierarchy with the replace rules. */
class DetectionApplyTest {

    @TempDir
    Path tmp;

    private ImageData<BufferedImage> imageData;
    private PathObjectHierarchy hierarchy;
    private PathObject region;
    private PathObject userGlomerulus;
    private PathObject pending;
    private PathObject pendingDetection;
    private PathObject accepted;
    private PathObject rejected;
    private PathObject edited;
    private PathObject pendingOutside;

    /** A hubseg proposal (through the same conversion as the server's answer) at (x, y), size s. */
    static PathObject proposal(double x, double y, double s, String objectType) {
        JsonObject properties = new JsonObject();
        properties.addProperty("objectType", objectType);
        JsonObject classification = new JsonObject();
        classification.addProperty("name", HubsegObjects.CLASS_POSITIVE);
        properties.add("classification", classification);
        JsonObject metadata = new JsonObject();
        metadata.addProperty(HubsegObjects.META_MODEL, "m1");
        properties.add("metadata", metadata);
        JsonObject feature = new JsonObject();
        feature.addProperty("type", "Feature");
        feature.add("geometry", Geo.rectangle(x, y, s, s));
        feature.add("properties", properties);
        return QuPathObjects.fromFeatures(List.of(feature)).get(0);
    }

    @BeforeEach
    void hierarchy() throws Exception {
        imageData = TestImages.imageData(TestImages.writeSlide(tmp.resolve("slide.tif"), 1.0));
        hierarchy = imageData.getHierarchy();
        region = PathObjects.createAnnotationObject(ROIs.createRectangleROI(0, 0, 300, 300, ImagePlane.getDefaultPlane()));
        userGlomerulus = PathObjects.createAnnotationObject(
                ROIs.createEllipseROI(20, 20, 30, 30, ImagePlane.getDefaultPlane()),
                PathClass.fromString(HubsegObjects.CLASS_POSITIVE));
        pending = proposal(100, 100, 20, "annotation");
        pendingDetection = proposal(150, 100, 20, "detection");
        accepted = proposal(100, 150, 20, "annotation");
        QuPathObjects.applyReview(accepted, ReviewState.ACCEPTED);
        rejected = proposal(150, 150, 20, "annotation");
        QuPathObjects.applyReview(rejected, ReviewState.REJECTED);
        edited = proposal(200, 200, 20, "annotation");
        ((PathROIObject) edited).setROI(ROIs.createRectangleROI(200, 200, 25, 20, ImagePlane.getDefaultPlane())); // user moved an edge
        pendingOutside = proposal(340, 340, 20, "annotation");
        hierarchy.addObjects(List.of(region, userGlomerulus, pending, pendingDetection, accepted, rejected, edited,
                pendingOutside));
    }

    private Set<PathObject> all() {
        List<PathObject> objects = new ArrayList<>(hierarchy.getAnnotationObjects());
        objects.addAll(hierarchy.getDetectionObjects());
        return Set.copyOf(objects);
    }

    @Test
    void onlyUnreviewedUneditedProposalsInTheRegionAreReplaced() {
        List<PathObject> replaced = Detector.replaceable(hierarchy, region.getROI(), false);
        assertEquals(Set.of(pending, pendingDetection), Set.copyOf(replaced));

        List<PathObject> added = List.of(proposal(100, 100, 22, "annotation"), proposal(250, 50, 20, "detection"));
        int count = Detector.apply(imageData, List.of(new Detector.RegionResult(region, added, replaced, "m2", null)));

        assertEquals(2, count);
        Set<PathObject> now = all();
        assertFalse(now.contains(pending));
        assertFalse(now.contains(pendingDetection));
        for (PathObject kept : List.of(region, userGlomerulus, accepted, rejected, edited, pendingOutside)) {
            assertTrue(now.contains(kept), "removed: " + kept);
        }
        assertTrue(now.containsAll(added));
        assertEquals(8, now.size());
        assertEquals("m2", region.getMetadata().get(HubsegObjects.META_REGION));
        // user objects stay free of hubseg metadata; reviewed ones keep their state and class
        assertFalse(userGlomerulus.hasMetadata());
        assertEquals(ReviewState.ACCEPTED, QuPathObjects.reviewState(accepted));
        assertEquals(HubsegObjects.CLASS_REJECTED, rejected.getPathClass().toString());
        assertEquals(ReviewState.CORRECTED, QuPathObjects.reviewState(edited));
    }

    @Test
    void aWholeImageRunReplacesEveryPendingProposalAndRecordsItsRegion() {
        PathObject whole = PathObjects.createAnnotationObject(
                ROIs.createRectangleROI(0, 0, TestImages.SIZE, TestImages.SIZE, ImagePlane.getDefaultPlane()));
        whole.setName(Detector.WHOLE_IMAGE_NAME);
        List<PathObject> replaced = Detector.replaceable(hierarchy, whole.getROI(), true);
        assertEquals(Set.of(pending, pendingDetection, pendingOutside), Set.copyOf(replaced));

        Detector.apply(imageData, List.of(new Detector.RegionResult(whole, List.of(), replaced, "m2", "upload-1")));
        Set<PathObject> now = all();
        assertTrue(now.contains(whole), "the whole-image region is added to the hierarchy");
        assertEquals("m2", whole.getMetadata().get(HubsegObjects.META_REGION));
        assertEquals("upload-1", whole.getMetadata().get(Detector.META_UPLOAD));
        assertEquals(Set.of(region, userGlomerulus, accepted, rejected, edited, whole), now);
    }

    @Test
    void selectedRegionsAreUserAreaAnnotationsOnly() {
        hierarchy.getSelectionModel().setSelectedObjects(List.of(region, pending, pendingDetection), region);
        assertEquals(List.of(region), Detector.selectedRegions(imageData));
        Set<String> names = Detector.selectedRegions(imageData).stream().map(PathObject::getDisplayedName)
                .collect(Collectors.toSet());
        assertEquals(1, names.size());
    }
}
