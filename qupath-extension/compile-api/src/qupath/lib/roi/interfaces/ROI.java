// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.roi.interfaces;

import org.locationtech.jts.geom.Geometry;

public interface ROI {
    Geometry getGeometry();

    boolean contains(double x, double y);

    double getCentroidX();

    double getCentroidY();

    boolean isArea();

    double getBoundsX();

    double getBoundsY();

    double getBoundsWidth();

    double getBoundsHeight();
}
