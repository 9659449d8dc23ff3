// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
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
        SHOW_SELECTED, HIDE_SELECTED
    }
}
