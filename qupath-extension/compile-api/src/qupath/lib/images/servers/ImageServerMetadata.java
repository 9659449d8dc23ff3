// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.images.servers;

public class ImageServerMetadata {
    protected ImageServerMetadata() {
    }

    public native String getName();
}
