// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.common;

public class Version {
    protected Version() {
    }

    public static native Version parse(String versionString);
}
