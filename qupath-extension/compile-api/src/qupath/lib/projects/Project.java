// Compile-only declaration of QuPath 0.6/0.7 API the hubseg adapter uses (see ../README.md): never packaged, never run.
package qupath.lib.projects;

import qupath.lib.images.ImageData;

import java.nio.file.Path;
import java.util.List;

public interface Project<T> {
    ProjectImageEntry<T> getEntry(ImageData<T> imageData);

    List<ProjectImageEntry<T>> getImageList();

    Path getPath();
}
