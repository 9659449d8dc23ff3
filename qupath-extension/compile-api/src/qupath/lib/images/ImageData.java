// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
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
