// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.objects;

import qupath.lib.objects.classes.PathClass;
import qupath.lib.roi.interfaces.ROI;

import java.util.Map;
import java.util.UUID;

public abstract class PathObject {
    protected PathObject() {
    }

    public native boolean hasMetadata();

    public native Map<String, String> getMetadata();

    public native ROI getROI();

    public native Map<String, Number> getMeasurements();

    public native PathClass getPathClass();

    public native void setPathClass(PathClass pathClass);

    public native boolean isDetection();

    public native boolean isAnnotation();

    public native UUID getID();

    public native String getName();

    public native void setName(String name);

    public native void setLocked(boolean locked);

    public native PathObject getParent();

    public native String getDisplayedName();
}
