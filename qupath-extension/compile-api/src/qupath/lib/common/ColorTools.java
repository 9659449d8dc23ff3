// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.common;

public class ColorTools {
    protected ColorTools() {
    }

    public static native int packRGB(int r, int g, int b);

    public static native int red(int rgb);

    public static native int green(int rgb);

    public static native int blue(int rgb);
}
