// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.regions;

public class RegionRequest {
    protected RegionRequest() {
    }

    public static native RegionRequest createInstance(String path, double downsample, int x, int y, int width, int height);
}
