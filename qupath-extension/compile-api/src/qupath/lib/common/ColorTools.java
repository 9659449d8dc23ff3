// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.common;

public class ColorTools {
    protected ColorTools() {
    }

    public static native int packRGB(int r, int g, int b);

    public static native int red(int rgb);

    public static native int green(int rgb);

    public static native int blue(int rgb);
}
