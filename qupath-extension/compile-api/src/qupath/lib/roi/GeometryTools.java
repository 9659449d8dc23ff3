// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.roi;

import org.locationtech.jts.geom.Geometry;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.interfaces.ROI;

public class GeometryTools {
    protected GeometryTools() {
    }

    public static native ROI geometryToROI(Geometry geometry, ImagePlane plane);
}
