// Compile-only: the members of this QuPath class that the hubseg adapter uses, with their exact signatures
// (qupath-extension/compile-api/README.md). Never packaged, never on a run-time class path.
package qupath.lib.projects;

import qupath.lib.images.ImageData;

import java.nio.file.Path;
import java.util.List;

public interface Project<T> {
    ProjectImageEntry<T> getEntry(ImageData<T> imageData);

    List<ProjectImageEntry<T>> getImageList();

    Path getPath();
}
