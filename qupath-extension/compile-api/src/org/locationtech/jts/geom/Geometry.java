// Compile-only declaration of QuPath JTS 1.20 (shipped with QuPath) API the hubseg adapter uses (see ../README.md): never packaged, never run.
package org.locationtech.jts.geom;

public abstract class Geometry {
    protected Geometry() {
    }
}
