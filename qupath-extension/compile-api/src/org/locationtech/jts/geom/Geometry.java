// Compile-only: the members of this class (shipped with QuPath) that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package org.locationtech.jts.geom;

public abstract class Geometry {
    protected Geometry() {
    }
}
