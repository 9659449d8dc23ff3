// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.gui.viewer;

import javafx.collections.ObservableSet;
import qupath.lib.objects.classes.PathClass;

public class OverlayOptions {
    protected OverlayOptions() {
    }

    public native ClassVisibilityMode getSelectedClassVisibilityMode();

    public native ObservableSet<PathClass> selectedClassesProperty();

    public native void setPathClassHidden(PathClass pathClass, boolean hidden);

    public enum ClassVisibilityMode {
        SHOW_SELECTED
    }
}
