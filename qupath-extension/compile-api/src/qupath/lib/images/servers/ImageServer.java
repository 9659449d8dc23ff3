// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.images.servers;

import qupath.lib.io.UriResource;
import qupath.lib.regions.RegionRequest;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;

public interface ImageServer<T> extends UriResource, AutoCloseable {
    @Override
    Collection<URI> getURIs();

    String getPath();

    int getWidth();

    int getHeight();

    T readRegion(RegionRequest request) throws IOException;

    PixelCalibration getPixelCalibration();

    ImageServerMetadata getMetadata();
}
