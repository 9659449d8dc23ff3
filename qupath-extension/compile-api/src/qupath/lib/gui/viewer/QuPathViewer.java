// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
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
