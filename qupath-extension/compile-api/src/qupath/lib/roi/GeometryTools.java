// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.roi;

import org.locationtech.jts.geom.Geometry;
import qupath.lib.regions.ImagePlane;
import qupath.lib.roi.interfaces.ROI;

public class GeometryTools {
    protected GeometryTools() {
    }

    public static native ROI geometryToROI(Geometry geometry, ImagePlane plane);
}
