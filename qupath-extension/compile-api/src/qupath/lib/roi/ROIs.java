// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.roi;

import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.interfaces.ROI;

public class ROIs {
    protected ROIs() {
    }

    public static native ROI createRectangleROI(double x, double y, double width, double height, ImagePlane plane);
}
