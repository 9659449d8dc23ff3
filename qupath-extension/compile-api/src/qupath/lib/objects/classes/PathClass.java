// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.objects.classes;

public class PathClass {
    protected PathClass() {
    }

    public static native PathClass fromString(String pathClassString);

    public static native PathClass fromString(String pathClassString, Integer rgb);

    public native Integer getColor();
}
