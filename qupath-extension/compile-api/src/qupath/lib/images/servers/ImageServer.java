// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.images.servers;

import qupath.lib.regions.RegionRequest;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;

public interface ImageServer<T> extends AutoCloseable {
    Collection<URI> getURIs();

    String getPath();

    int getWidth();

    int getHeight();

    T readRegion(RegionRequest request) throws IOException;

    PixelCalibration getPixelCalibration();

    ImageServerMetadata getMetadata();
}
