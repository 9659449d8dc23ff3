// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.gui.prefs;

import javafx.beans.property.StringProperty;

public class PathPrefs {
    protected PathPrefs() {
    }

    public static native StringProperty createPersistentPreference(String name, String defaultValue);
}
