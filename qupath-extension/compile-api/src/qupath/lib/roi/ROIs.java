// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.roi;

import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.interfaces.ROI;

public class ROIs {
    protected ROIs() {
    }

    public static native ROI createRectangleROI(double x, double y, double width, double height, ImagePlane plane);
}
