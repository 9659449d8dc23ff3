"""The only module that talks to QuPath (through paquo). Everything else uses ``store.ProjectStore``.

paquo starts a JVM with QuPath's jars when ``paquo.projects`` is first imported, so the import happens
in :func:`open_project`, and a missing QuPath becomes one ``DependencyMissingError`` line (exit 2 in
the CLI) saying how to point paquo at QuPath.

QuPath version notes (why some calls are guarded): object metadata is ``PathObject.getMetadata()``
(a live ``Map<String,String>``) from QuPath 0.5, and ``putMetadataValue``/``getMetadataKeys`` on
annotations in 0.4; pixel calibration comes from the image server's ``PixelCalibration``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hubseg.errors import DependencyMissingError, NotFoundError
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
        from paquo.classes import QuPathPathClass
        from paquo.projects import QuPathProject
    except Exception as error:  # paquo raises ValueError/FileNotFoundError/JVM errors when QuPath is missing
        reason = " ".join(str(error).split())[:200]
        raise DependencyMissingError(f"{QUPATH_MISSING} ({reason})") from None
    return QuPathProject, QuPathPathClass


def qupath_available() -> bool:
    """True when paquo can start QuPath here (used by tests to decide whether to skip)."""
    try:
        _paquo()
    except DependencyMissingError:
        return False
    return True


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

    def _entry(self, image: ImageRef):
        return self._entries[image.entry_id]

    def images(self) -> list[ImageRef]:
        refs = []
        for entry_id, entry in self._entries.items():
            try:
                uri = str(entry.uri)
            except (RuntimeError, NotImplementedError):  # no server / several URIs (paquo supports one)
                uri = ""
            refs.append(
                ImageRef(
                    name=str(entry.image_name),
                    entry_id=entry_id,
                    uri=uri,
                    width=int(entry.width),
                    height=int(entry.height),
                    pixel_size_um=self._pixel_size(entry),
                )
            )
        return refs

    @staticmethod
    def _pixel_size(entry) -> float | None:
        """Level-0 µm/px as QuPath has it (the user may have set it in QuPath), else None."""
        try:
            calibration = entry._image_server.getPixelCalibration()  # paquo exposes no public accessor
            if bool(calibration.hasPixelSizeMicrons()):
                return float(calibration.getAveragedPixelSizeMicrons())
        except Exception:
            pass
        try:  # QuPath writes the server description, calibration included, beside the image data
            server = json.loads((Path(entry.entry_path) / "server.json").read_text())
            width = server["metadata"]["pixelCalibration"]["pixelWidth"]
            if str(width.get("unit", "")).lower() in ("µm", "um", "micron", "microns"):
                return float(width["value"])
        except Exception:
            pass
        return None

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
        self._project.save()

    def close(self) -> None:
        self._entries.clear()
