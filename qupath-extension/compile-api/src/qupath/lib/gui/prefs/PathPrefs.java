// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.gui.prefs;

import javafx.beans.property.StringProperty;

public class PathPrefs {
    protected PathPrefs() {
    }

    public static native StringProperty createPersistentPreference(String name, String defaultValue);
}
