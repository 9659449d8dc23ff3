// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.objects.hierarchy;

import qupath.lib.objects.PathObject;
import qupath.lib.objects.hierarchy.events.PathObjectSelectionModel;

import java.util.Collection;

public class PathObjectHierarchy {
    protected PathObjectHierarchy() {
    }

    public native Collection<PathObject> getAnnotationObjects();

    public native Collection<PathObject> getDetectionObjects();

    public native boolean removeObject(PathObject pathObject, boolean keepChildren);

    public native void removeObjects(Collection<? extends PathObject> pathObjects, boolean keepChildren);

    public native boolean addObject(PathObject pathObject);

    public native boolean addObjects(Collection<? extends PathObject> pathObjects);

    public native void fireHierarchyChangedEvent(Object source);

    public native void fireObjectClassificationsChangedEvent(Object source, Collection<? extends PathObject> pathObjects);

    public native PathObjectSelectionModel getSelectionModel();
}
