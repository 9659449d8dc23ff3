// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.io;

import com.google.gson.Gson;

public class GsonTools {
    protected GsonTools() {
    }

    public static native Gson getInstance();
}
