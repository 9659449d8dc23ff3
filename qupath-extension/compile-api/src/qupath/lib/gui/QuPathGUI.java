// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.gui;

import javafx.collections.ObservableList;
import javafx.scene.control.Menu;
import javafx.stage.Stage;
import qupath.lib.gui.viewer.OverlayOptions;
import qupath.lib.gui.viewer.QuPathViewer;
import qupath.lib.images.ImageData;
import qupath.lib.projects.Project;

import java.awt.image.BufferedImage;

public class QuPathGUI {
    protected QuPathGUI() {
    }

    public native Stage getStage();

    public native ImageData<BufferedImage> getImageData();

    public native Project<BufferedImage> getProject();

    public native QuPathViewer getViewer();

    public native ObservableList<QuPathViewer> getAllViewers();

    public native Menu getMenu(String name, boolean create);

    public native OverlayOptions getOverlayOptions();
}
