// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.gui.viewer;

import qupath.lib.images.ImageData;
import qupath.lib.roi.interfaces.ROI;

import java.awt.image.BufferedImage;

public class QuPathViewer {
    protected QuPathViewer() {
    }

    public native ImageData<BufferedImage> getImageData();

    public native void centerROI(ROI roi);
}
