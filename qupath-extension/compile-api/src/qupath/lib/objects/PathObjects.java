// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.objects;

import qupath.lib.objects.classes.PathClass;
import qupath.lib.roi.interfaces.ROI;

public class PathObjects {
    protected PathObjects() {
    }

    public static native PathObject createAnnotationObject(ROI roi);

    public static native PathObject createAnnotationObject(ROI roi, PathClass pathClass);

    public static native PathObject createDetectionObject(ROI roi, PathClass pathClass);
}
