"""The only module that talks to QuPath (through paquo). Everything else uses ``store.ProjectStore``.

paquo starts a JVM with QuPath's jars when ``paquo.projects`` is first imported, so the import happens
in :func:`open_project`, and a missing QuPath becomes one ``DependencyMissingError`` line (exit 2 in
the CLI) saying how to point paquo at QuPath.

QuPath version notes (why some calls are guarded): object metadata is ``PathObject.getMetadata()``
(a live ``Map<String,String>``) from QuPath 0.5, and ``putMetadataValue``/``getMetadataKeys`` on
annotations in 0.4. Image size and pixel calibration come from the server metadata QuPath stores with
each entry (``server.json``, ``project.qpproj``), so listing a project never opens its images.

Run against real QuPath 0.6.0 code (built from source, ImageJ image server) in ``tests/project``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from hubseg.errors import DependencyMissingError, HubsegError, NotFoundError
from hubseg.project import review
from hubseg.project.store import ImageRef, NewObject, ProjectObject

QUPATH_MISSING = (
    "QuPath not found: `hubseg project` uses paquo, which needs a QuPath installation; set PAQUO_QUPATH_DIR "
    "to the QuPath folder (e.g. /opt/QuPath, C:\\Program Files\\QuPath-0.5.1, /Applications/QuPath.app) "
    "or install one with `python -m paquo get_qupath --install-path DIR`"
)


def _paquo():
    """Import paquo's project API (starts the JVM); one clear error when paquo or QuPath is missing."""
    try:
        import paquo  # noqa: F401
    except ImportError:
        raise DependencyMissingError(
            "paquo is not installed: install it with `pip install 'hubseg[paquo]'` (and QuPath, see PAQUO_QUPATH_DIR)"
        ) from None
    try:
        with _java_stdout_discarded():  # QuPath logs at DEBUG while paquo starts it and loads its classes
            from paquo.classes import QuPathPathClass
            from paquo.projects import QuPathProject
    except Exception as error:  # paquo raises ValueError/FileNotFoundError/JVM errors when QuPath is missing
        reason = " ".join(str(error).split())[:200]
        raise DependencyMissingError(f"{QUPATH_MISSING} ({reason})") from None
    _quiet_java_console()
    return QuPathProject, QuPathPathClass


@contextlib.contextmanager
def _java_stdout_discarded():
    """Point file descriptor 1 at the null device for the duration: the JVM writes to the descriptor, not
    to ``sys.stdout``, and QuPath's start-up DEBUG lines belong in no command's output. (Java errors go to
    descriptor 2 and paquo's failures are Python exceptions, so nothing useful is hidden.)"""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real descriptors (embedded interpreters)
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _quiet_java_console() -> None:
    """Keep QuPath's log off stdout: paquo switches QuPath's logger to DEBUG, and logback's console appender
    writes to Java's ``System.out``, i.e. into the output of ``hubseg project status --json``. Warnings and
    errors still show, on stderr. Best effort: a QuPath without logback keeps its own logging."""
    try:
        from jpype import JClass

        JClass("qupath.lib.gui.logging.LogManager").setWarn()
        root = JClass("org.slf4j.LoggerFactory").getLogger("ROOT")
        console = JClass("ch.qos.logback.core.ConsoleAppender")
        appenders = root.iteratorForAppenders()
        while appenders.hasNext():
            appender = appenders.next()
            if isinstance(appender, console) and str(appender.getTarget()) != "System.err":
                appender.stop()
                appender.setTarget("System.err")
                appender.start()
    except Exception:
        pass


def open_project(path: str | os.PathLike, *, writable: bool = False) -> "PaquoProjectStore":
    """Open an existing ``project.qpproj`` (or its folder) as a :class:`store.ProjectStore`."""
    project_path = Path(path).expanduser()
    if project_path.is_dir():
        project_path = project_path / "project.qpproj"
    if not project_path.is_file():
        raise NotFoundError(f"no QuPath project at {project_path}; pass the project.qpproj file or its folder")
    QuPathProject, QuPathPathClass = _paquo()
    project = QuPathProject(project_path, mode="r+" if writable else "r")
    return PaquoProjectStore(project, project_path.resolve(), QuPathPathClass)


def _pixel_size_um(metadata: dict) -> float | None:
    """Level-0 µm/px from QuPath's server metadata JSON, or None when QuPath has no µm calibration."""
    try:
        width = metadata["pixelCalibration"]["pixelWidth"]
        if str(width.get("unit", "")).lower() in ("µm", "um", "micron", "microns"):
            value = float(width["value"])
            return value if value > 0 else None
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return None


def _project_file_metadata(project_file: Path) -> dict[str, dict]:
    """entry id -> server metadata as written in ``project.qpproj``."""
    try:
        images = json.loads(Path(project_file).read_text(encoding="utf-8")).get("images") or []
    except (OSError, ValueError, AttributeError):
        return {}
    found = {}
    for image in images:
        try:
            found[str(image["entryID"])] = dict(image["serverBuilder"]["metadata"])
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _read_metadata(java_object) -> dict[str, str]:
    if hasattr(java_object, "getMetadata"):  # QuPath >= 0.5
        metadata = java_object.getMetadata()
        return {str(key): str(metadata.get(key)) for key in metadata.keySet()}
    if hasattr(java_object, "getMetadataKeys"):  # QuPath 0.4 annotations
        return {str(key): str(java_object.getMetadataValue(key)) for key in java_object.getMetadataKeys()}
    return {}


def _write_metadata(java_object, metadata: dict[str, str]) -> None:
    if hasattr(java_object, "getMetadata"):
        live = java_object.getMetadata()
        for key, value in metadata.items():
            live.put(key, value)
    elif hasattr(java_object, "putMetadataValue"):
        for key, value in metadata.items():
            java_object.putMetadataValue(key, value)
    else:
        raise DependencyMissingError(
            "this QuPath version cannot store metadata on detection objects, which hubseg needs for the review "
            "state; write annotations (the default) or use QuPath 0.5 or newer"
        )


class PaquoProjectStore:
    """:class:`hubseg.project.store.ProjectStore` over a paquo ``QuPathProject``."""

    def __init__(self, project, path: Path, path_class_type):
        self._project = project
        self._path_class_type = path_class_type
        self.path = path
        self._entries = {str(entry.entry_id): entry for entry in project.images}
        self._project_metadata = _project_file_metadata(path)

    def _entry(self, image: ImageRef):
        return self._entries[image.entry_id]

    def images(self) -> list[ImageRef]:
        """The entries as QuPath describes them. An image is opened only when QuPath has stored no metadata
        for it yet, and one that cannot be opened (moved, unreadable) must not stop the other images."""
        refs = []
        for entry_id, entry in self._entries.items():
            try:
                uri = str(entry.uri)
            except (RuntimeError, NotImplementedError):  # no server / several URIs (paquo supports one)
                uri = ""
            metadata = self._server_metadata(entry)
            pixel_size = _pixel_size_um(metadata)
            if pixel_size is None and "pixelCalibration" not in metadata:
                pixel_size = self._live_pixel_size(entry)  # an image QuPath has not saved yet
            refs.append(
                ImageRef(
                    name=str(entry.image_name),
                    entry_id=entry_id,
                    uri=uri,
                    width=int(metadata.get("width") or 0),
                    height=int(metadata.get("height") or 0),
                    pixel_size_um=pixel_size,
                )
            )
        return refs

    @staticmethod
    def _live_pixel_size(entry) -> float | None:
        """Open the image through QuPath for its calibration; None when QuPath cannot open it."""
        try:
            calibration = entry._image_server.getPixelCalibration()  # paquo exposes no public accessor
            if bool(calibration.hasPixelSizeMicrons()):
                return float(calibration.getAveragedPixelSizeMicrons())
        except Exception:  # a moved or unreadable file: hubseg reports it when it reads the pixels
            pass
        return None

    def _server_metadata(self, entry) -> dict:
        """The image server metadata QuPath stored for the entry: ``data/<id>/server.json`` (rewritten on
        each save, so it carries a pixel size the user set in QuPath), else the project file's copy."""
        try:
            server = json.loads((Path(entry.entry_path) / "server.json").read_text(encoding="utf-8"))
            if isinstance(server.get("metadata"), dict):
                return server["metadata"]
        except (OSError, ValueError, AttributeError):
            pass
        return self._project_metadata.get(str(entry.entry_id), {})

    def read_objects(self, image: ImageRef) -> list[ProjectObject]:
        hierarchy = self._entry(image).hierarchy
        objects = []
        for object_type, proxy in (("annotation", hierarchy.annotations), ("detection", hierarchy.detections)):
            for path_object in proxy:
                path_class = path_object.path_class
                objects.append(
                    ProjectObject(
                        key=str(path_object.java_object.getID()),
                        geometry=path_object.roi,
                        class_name=path_class.name if path_class is not None else None,
                        object_type=object_type,
                        metadata=_read_metadata(path_object.java_object),
                        measurements={str(k): float(v) for k, v in path_object.measurements.items()},
                    )
                )
        return objects

    def image_data_files(self, image: ImageRef) -> list[Path]:
        folder = Path(self._entry(image).entry_path)
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def _ensure_class(self, name: str, color) -> object:
        for path_class in self._project.path_classes:
            if path_class.name == name:
                return path_class
        path_class = self._path_class_type(name, color=tuple(color) if color else None)
        self._project.path_classes = list(self._project.path_classes) + [path_class]
        return path_class

    def write_objects(self, image: ImageRef, remove_keys: list[str], add: list[NewObject]) -> None:
        entry = self._entry(image)
        hierarchy = entry.hierarchy
        remove = set(remove_keys)
        with hierarchy.no_autoflush():
            for proxy in (hierarchy.annotations, hierarchy.detections):
                doomed = [o for o in proxy if str(o.java_object.getID()) in remove]
                for path_object in doomed:
                    proxy.discard(path_object)
            for new in add:
                path_class = self._ensure_class(new.class_name, new.color)
                adder = hierarchy.add_detection if new.object_type == "detection" else hierarchy.add_annotation
                path_object = adder(roi=new.geometry, path_class=path_class, measurements=dict(new.measurements))
                # fingerprint the shape as QuPath stores it (float32 vertices), so an untouched object matches
                _write_metadata(path_object.java_object, review.stamp_geometry(new.metadata, path_object.roi))
        # Save this image only: QuPathProject.save() would open every image of the project to ask whether
        # it changed (and fails on any that cannot be opened); then the project file (new classes).
        entry.save()
        if entry.is_changed():
            raise HubsegError(
                f"QuPath did not save the objects of {image.name!r} (is its image file {image.uri} readable?); "
                "nothing was written to this image, its backup is under <project>/hubseg/backups"
            )
        self._project.save(images=False)

    def close(self) -> None:
        self._entries.clear()
