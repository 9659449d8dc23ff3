// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.objects.classes;

public class PathClass {
    protected PathClass() {
    }

    public static native PathClass fromString(String pathClassString);

    public static native PathClass fromString(String pathClassString, Integer rgb);

    public native Integer getColor();
}
