// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.objects.hierarchy.events;

import qupath.lib.objects.PathObject;

import java.util.Set;

public class PathObjectSelectionModel {
    protected PathObjectSelectionModel() {
    }

    public native Set<PathObject> getSelectedObjects();

    public native void setSelectedObject(PathObject pathObject);
}
