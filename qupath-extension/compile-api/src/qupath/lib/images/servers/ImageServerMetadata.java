// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.images.servers;

public class ImageServerMetadata {
    protected ImageServerMetadata() {
    }

    public native String getName();
}
