// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.objects.hierarchy.events;

import qupath.lib.objects.PathObject;

import java.util.Set;

public class PathObjectSelectionModel {
    protected PathObjectSelectionModel() {
    }

    public native Set<PathObject> getSelectedObjects();

    public native void setSelectedObject(PathObject pathObject);
}
