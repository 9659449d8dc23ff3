// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
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
