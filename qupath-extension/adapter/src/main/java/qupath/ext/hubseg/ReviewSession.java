package qupath.ext.hubseg;

import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.ModelReference;
import qupath.ext.hubseg.core.RejectBehaviour;
import qupath.ext.hubseg.core.ReviewItem;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.ReviewState;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The review of one image, without UI: the hubseg objects as a {@link ReviewQueue} (order, states, counts), and
 * each decision written to its QuPath object at once (metadata {@code hubseg.review}, class, or deletion), so it
 * is saved with the image data. {@link ReviewPanel} only displays it.
 */
final class ReviewSession {

    private final ImageData<BufferedImage> imageData;
    private final RejectBehaviour rejectBehaviour;
    private final Map<String, PathObject> objects = new HashMap<>();
    private ReviewQueue queue;
    /** Set by {@link #rebuild} on the JavaFX thread, read by {@link #cardReferences} in the background. */
    private volatile String model;

    ReviewSession(ImageData<BufferedImage> imageData, RejectBehaviour rejectBehaviour, boolean hideUncertain) {
        this.imageData = imageData;
        this.rejectBehaviour = rejectBehaviour;
        rebuild(hideUncertain);
    }

    ImageData<BufferedImage> imageData() {
        return imageData;
    }

    ReviewQueue queue() {
        return queue;
    }

    /**
     * The reference crops of the card of the model that proposed the objects (else the chosen, else the server's
     * active model), with their bytes. Network: never on the JavaFX thread.
     */
    List<ReviewPanel.Crop> cardReferences() {
        HubsegSettings settings = HubsegPreferences.get();
        HubsegClient client = HubsegClient.fromSettings(settings);
        String proposer = model;
        String name = proposer != null ? proposer : settings.modelOrNull() != null ? settings.modelOrNull()
                : client.health().activeModel();
        return ModelReference.of(client.model(name)).stream()
                .map(reference -> new ReviewPanel.Crop(reference, client.referenceCrop(reference))).toList();
    }

    /** Reads the hubseg objects and their stored (or edited = corrected) states from the image again. */
    ReviewQueue rebuild(boolean hideUncertain) {
        objects.clear();
        List<ReviewItem> items = new ArrayList<>();
        Map<String, ReviewState> states = new HashMap<>();
        List<PathObject> all = new ArrayList<>(imageData.getHierarchy().getAnnotationObjects());
        all.addAll(imageData.getHierarchy().getDetectionObjects());
        for (PathObject p : all) {
            if (!QuPathObjects.isHubsegObject(p)) {
                continue;
            }
            ReviewItem item = QuPathObjects.reviewItem(p);
            ReviewState state = QuPathObjects.reviewState(p);
            if (state == ReviewState.CORRECTED) {
                p.getMetadata().put(HubsegObjects.META_REVIEW, state.metadataValue());
            }
            objects.put(item.id(), p);
            items.add(item);
            states.put(item.id(), state);
        }
        model = objects.values().stream().map(p -> p.getMetadata().get(HubsegObjects.META_MODEL))
                .filter(name -> name != null && !name.isBlank()).findFirst().orElse(null);
        queue = new ReviewQueue(items, states, hideUncertain);
        queue.setListener(this::applyDecision);
        return queue;
    }

    /**
     * Makes {@code id} the current item and returns its object, or null when it is gone (rejected with
     * Reject = DELETE, or deleted by the user). A shape edited since the list was built counts as corrected.
     */
    PathObject focus(String id) {
        queue.select(id);
        PathObject p = objects.get(id);
        if (p == null || p.getROI() == null || p.getParent() == null) {
            return null;
        }
        ReviewState stored = queue.state(id);
        if (QuPathObjects.reviewState(p) == ReviewState.CORRECTED && stored != ReviewState.CORRECTED
                && stored != ReviewState.REJECTED) {
            queue.markCorrected(id);
        }
        return p;
    }

    /** Writes a decision to the QuPath object (and deletes a rejected object if so configured). */
    private void applyDecision(ReviewItem item, ReviewState state) {
        PathObject p = objects.get(item.id());
        if (p == null) {
            return;
        }
        QuPathObjects.applyReview(p, state);
        if (state == ReviewState.REJECTED && rejectBehaviour == RejectBehaviour.DELETE) {
            imageData.getHierarchy().removeObject(p, true);
        } else {
            // PathObjectHierarchy.fireObjectClassificationsChangedEvent(Object, Collection): repaint + save prompt
            imageData.getHierarchy().fireObjectClassificationsChangedEvent(this, List.of(p));
        }
    }
}
