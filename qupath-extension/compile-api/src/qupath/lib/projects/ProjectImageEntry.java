// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.projects;

import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServerBuilder.ServerBuilder;
import qupath.lib.io.UriResource;

import java.io.IOException;

public interface ProjectImageEntry<T> extends UriResource {
    String getImageName();

    ImageData<T> readImageData() throws IOException;

    void saveImageData(ImageData<T> imageData) throws IOException;

    ServerBuilder<T> getServerBuilder();
}
