// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.images;

import qupath.lib.images.servers.ImageServer;
import qupath.lib.objects.hierarchy.PathObjectHierarchy;

public class ImageData<T> implements AutoCloseable {
    protected ImageData() {
    }

    public native PathObjectHierarchy getHierarchy();

    public native ImageServer<T> getServer();

    @Override
    public native void close() throws Exception;
}
