// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.gui.extensions;

import qupath.lib.common.Version;
import qupath.lib.gui.QuPathGUI;

public interface QuPathExtension {
    void installExtension(QuPathGUI qupath);

    String getName();

    String getDescription();

    default Version getQuPathVersion() {
        throw new UnsupportedOperationException("compile-only declaration");
    }
}
