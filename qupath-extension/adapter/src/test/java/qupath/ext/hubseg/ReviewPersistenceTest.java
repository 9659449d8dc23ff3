package qupath.ext.hubseg;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.RejectBehaviour;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.images.ImageData;
import qupath.lib.io.PathIO;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathROIObject;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.ROIs;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Review decisions written through metadata by ReviewSession and surviving QuPath's own save/reload (PathIO). */
class ReviewPersistenceTest {

    @TempDir
    Path tmp;

    private static Map<String, PathObject> byId(ImageData<BufferedImage> imageData) {
        List<PathObject> all = new ArrayList<>(imageData.getHierarchy().getAnnotationObjects());
        all.addAll(imageData.getHierarchy().getDetectionObjects());
        Map<String, PathObject> map = new HashMap<>();
        all.forEach(p -> map.put(p.getID().toString(), p));
        return map;
    }

    @Test
    void decisionsAreStoredOnTheObjectsAndSurviveSaveAndReload() throws Exception {
        ImageData<BufferedImage> imageData = TestImages.imageData(TestImages.writeSlide(tmp.resolve("slide.tif"), 1.0));
        PathObject a = DetectionApplyTest.proposal(10, 10, 20, "annotation");
        PathObject r = DetectionApplyTest.proposal(60, 10, 20, "detection");
        PathObject e = DetectionApplyTest.proposal(110, 10, 20, "annotation");
        PathObject untouched = DetectionApplyTest.proposal(160, 10, 20, "annotation");
        a.setPathClass(qupath.lib.objects.classes.PathClass.fromString(HubsegObjects.CLASS_UNCERTAIN));
        imageData.getHierarchy().addObjects(List.of(a, r, e, untouched));

        ReviewSession session = new ReviewSession(imageData, RejectBehaviour.KEEP_AS_REJECTED, false);
        ReviewQueue queue = session.queue();
        assertEquals(4, queue.size());
        assertEquals(0, queue.reviewedCount());
        String aId = a.getID().toString();
        String rId = r.getID().toString();
        String eId = e.getID().toString();
        queue.accept(aId);
        queue.reject(rId);
        ((PathROIObject) e).setROI(ROIs.createRectangleROI(110, 10, 30, 20, ImagePlane.getDefaultPlane())); // edited in the viewer
        assertEquals(e, session.focus(eId));
        assertEquals(ReviewState.CORRECTED, queue.state(eId));

        assertEquals("accepted", a.getMetadata().get(HubsegObjects.META_REVIEW));
        assertEquals(HubsegObjects.CLASS_POSITIVE, a.getPathClass().toString(), "an accepted uncertain object is a glomerulus");
        assertEquals("rejected", r.getMetadata().get(HubsegObjects.META_REVIEW));
        assertEquals(HubsegObjects.CLASS_REJECTED, r.getPathClass().toString());
        assertEquals("corrected", e.getMetadata().get(HubsegObjects.META_REVIEW));

        // QuPath's own .qpdata writer and reader (what a project does with each image)
        Path saved = tmp.resolve("image.qpdata");
        PathIO.writeImageData(saved, imageData);
        ImageData<BufferedImage> reloaded = new ImageData<>(imageData.getServer(), PathIO.readHierarchy(saved));
        Map<String, PathObject> objects = byId(reloaded);
        assertEquals(4, objects.size());
        assertEquals(ReviewState.ACCEPTED, QuPathObjects.reviewState(objects.get(aId)));
        assertEquals(HubsegObjects.CLASS_POSITIVE, objects.get(aId).getPathClass().toString());
        assertEquals(ReviewState.REJECTED, QuPathObjects.reviewState(objects.get(rId)));
        assertTrue(objects.get(rId).isDetection());
        assertEquals(HubsegObjects.CLASS_REJECTED, objects.get(rId).getPathClass().toString());
        assertEquals(ReviewState.CORRECTED, QuPathObjects.reviewState(objects.get(eId)));
        assertEquals(ReviewState.PENDING, QuPathObjects.reviewState(objects.get(untouched.getID().toString())));

        ReviewQueue again = new ReviewSession(reloaded, RejectBehaviour.KEEP_AS_REJECTED, false).queue();
        assertEquals(3, again.reviewedCount());
        assertEquals(ReviewState.CORRECTED, again.state(eId));
        // the reloaded objects keep the proposal's fingerprint: re-running detection must not replace them
        assertTrue(Detector.replaceable(reloaded.getHierarchy(), null, true).stream()
                .allMatch(p -> p.getID().equals(untouched.getID())));
        imageData.close();
    }

    @Test
    void rejectWithDeleteRemovesTheObject() throws Exception {
        ImageData<BufferedImage> imageData = TestImages.imageData(TestImages.writeSlide(tmp.resolve("slide.tif"), 1.0));
        PathObject p = DetectionApplyTest.proposal(10, 10, 20, "annotation");
        imageData.getHierarchy().addObject(p);
        ReviewSession session = new ReviewSession(imageData, RejectBehaviour.DELETE, false);
        session.queue().reject(p.getID().toString());
        assertFalse(imageData.getHierarchy().getAnnotationObjects().contains(p));
        assertNull(session.focus(p.getID().toString()), "a deleted object cannot be focused");
        imageData.close();
    }
}
