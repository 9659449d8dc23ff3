"""``open_slide``: choose the reader for a file by its suffix and first bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hubseg.errors import DependencyMissingError, InvalidInputError, NotFoundError, UnsupportedFormatError
from hubseg.slide.base import (
    OPENSLIDE_ONLY_SUFFIXES,
    OPENSLIDE_TIFF_SUFFIXES,
    PILSlide,
    Slide,
    supported_formats_text,
)
from hubseg.limits import check_pixel_size
from hubseg.slide.readers import OpenSlideSlide, TiffSlide


def _openslide_available() -> bool:
    try:
        import openslide  # noqa: F401
    except Exception:  # ImportError, or OSError when the shared library is missing
        return False
    return True


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".ome.tif", ".ome.tiff"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def _sniff(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff" or head[:2] == b"BM":
        return "pil"
    return "unknown"


def open_slide(path: str | os.PathLike, pixel_size_um: float | None = None) -> Slide:
    """Open a slide; ``pixel_size_um`` overrides (or supplies) the level-0 calibration.

    Raises NotFoundError, UnsupportedFormatError (listing supported formats), MissingPixelSizeError
    (saying how to pass --pixel-size), DependencyMissingError (for OpenSlide formats without OpenSlide).
    """
    path = Path(path).expanduser()
    pixel_size_um = None if pixel_size_um is None else check_pixel_size(pixel_size_um, "--pixel-size")
    if not path.exists():
        raise NotFoundError(f"slide not found: {path}")
    if path.is_dir():
        raise UnsupportedFormatError(f"{path} is a folder, not an image file; supported formats: {supported_formats_text()}")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the first read forever
        raise InvalidInputError(f"{path} is not a regular file (a FIFO, socket or device); name an image file")
    suffix = _suffix(path)
    if suffix in OPENSLIDE_ONLY_SUFFIXES:
        if not _openslide_available():
            raise DependencyMissingError(
                f"{path.name} ({suffix}) needs OpenSlide: install it with `pip install hubseg[openslide]`"
            )
        return OpenSlideSlide(path, pixel_size_um)
    if suffix in OPENSLIDE_TIFF_SUFFIXES and _openslide_available():
        return OpenSlideSlide(path, pixel_size_um)
    kind = _sniff(path)
    if kind == "tiff":
        try:
            return TiffSlide(path, pixel_size_um)
        except UnsupportedFormatError:
            if suffix in OPENSLIDE_TIFF_SUFFIXES:
                raise DependencyMissingError(
                    f"{path.name} could not be read with tifffile; install OpenSlide with `pip install hubseg[openslide]`"
                ) from None
            raise
    if kind == "pil":
        return PILSlide(path, pixel_size_um)
    raise UnsupportedFormatError(
        f"cannot read {path.name}: not a recognised image format; supported formats: {supported_formats_text()}"
    )
