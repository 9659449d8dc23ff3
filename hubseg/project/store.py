"""The plain-Python view of a QuPath project that everything outside ``qupath_project`` works on.

``qupath_project.PaquoProjectStore`` implements :class:`ProjectStore` with paquo; tests implement it in memory.
Keeping the paquo calls behind this small interface is what lets the review rules, the replacement
selection and the label-set building be tested without a QuPath installation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Protocol
from urllib.parse import unquote, urlparse

from shapely.geometry.base import BaseGeometry

from hubseg.errors import UnsupportedFormatError


@dataclass
class ImageRef:
    """One image entry of a project."""

    name: str
    entry_id: str
    uri: str
    width: int = 0
    height: int = 0
    pixel_size_um: float | None = None  # QuPath's calibration of level 0, when the entry has one


@dataclass
class ProjectObject:
    """An object already in an image's hierarchy. ``key`` identifies it within the image (QuPath's UUID)."""

    key: str
    geometry: BaseGeometry
    class_name: str | None
    object_type: str = "annotation"  # annotation | detection
    metadata: dict[str, str] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)


@dataclass
class NewObject:
    """An object to be written into an image's hierarchy (level-0 px)."""

    geometry: BaseGeometry
    class_name: str
    object_type: str = "annotation"
    metadata: dict[str, str] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)
    color: tuple[int, int, int] | None = None


class ProjectStore(Protocol):
    """What the project commands need from a QuPath project."""

    path: Path  # the project.qpproj file

    def images(self) -> list[ImageRef]: ...

    def read_objects(self, image: ImageRef) -> list[ProjectObject]: ...

    def image_data_files(self, image: ImageRef) -> list[Path]:
        """Files holding this image's objects (backed up before writing)."""
        ...

    def write_objects(self, image: ImageRef, remove_keys: list[str], add: list[NewObject]) -> None:
        """Remove the objects with ``remove_keys`` and add ``add``; the store stamps each new object's
        geometry fingerprint (``review.stamp_geometry``) on the geometry as stored, and saves the image."""
        ...

    def close(self) -> None: ...


def path_from_uri(uri: str) -> Path:
    """Local file path of a QuPath image URI (``file:/...``, ``file:///...``, ``file:/C:/...``).

    Raises ``UnsupportedFormatError`` for anything hubseg cannot open itself (OMERO, http, ...).
    """
    parsed = urlparse(uri)
    if parsed.scheme.lower() != "file":
        raise UnsupportedFormatError(
            f"image URI {uri!r} is not a local file; hubseg project commands read local files only "
            "(use the QuPath extension, which uploads the pixels, for images served by OMERO or over http)"
        )
    raw = unquote(parsed.path)
    if parsed.netloc and parsed.netloc.lower() != "localhost":
        raw = f"//{parsed.netloc}{raw}"  # UNC share
    # file:/C:/dir/x.tif -> /C:/dir/x.tif: strip the slash before a drive letter
    if len(raw) >= 3 and raw[0] == "/" and raw[2] == ":" and raw[1].isalpha():
        raw = raw[1:]
    if os.name == "nt":
        return Path(PureWindowsPath(raw))
    return Path(PurePosixPath(raw))
