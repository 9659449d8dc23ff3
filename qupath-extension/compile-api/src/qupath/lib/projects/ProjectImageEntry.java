// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.projects;

import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServerBuilder.ServerBuilder;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;

public interface ProjectImageEntry<T> {
    Collection<URI> getURIs() throws IOException;

    String getImageName();

    ImageData<T> readImageData() throws IOException;

    void saveImageData(ImageData<T> imageData) throws IOException;

    ServerBuilder<T> getServerBuilder();
}
