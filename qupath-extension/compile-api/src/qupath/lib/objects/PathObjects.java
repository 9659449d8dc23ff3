// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
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
