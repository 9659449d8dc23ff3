// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.regions;

public class RegionRequest {
    protected RegionRequest() {
    }

    public static native RegionRequest createInstance(String path, double downsample, int x, int y, int width, int height);
}
