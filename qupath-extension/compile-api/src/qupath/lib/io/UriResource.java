// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.io;

import java.io.IOException;
import java.net.URI;
import java.util.Collection;

public interface UriResource {
    Collection<URI> getURIs() throws IOException;
}
