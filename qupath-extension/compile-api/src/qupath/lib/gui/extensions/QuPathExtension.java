// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
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
