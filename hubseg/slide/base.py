"""The slide base class, resampling, pixel-size rules and the in-memory readers (arrays, PNG/JPEG)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hubseg.errors import (
    InvalidInputError,
    MissingPixelSizeError,
    UnsupportedFormatError,
)
from hubseg.limits import PIXEL_SIZE_MAX_UM, PIXEL_SIZE_MIN_UM
from hubseg.pixels import read_rgb8, to_rgb8

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf", ".tf8", ".tf2")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
OPENSLIDE_ONLY_SUFFIXES = (".mrxs", ".vms", ".vmu", ".scn", ".bif", ".svslide")
OPENSLIDE_TIFF_SUFFIXES = (".svs", ".ndpi")
SUPPORTED_FORMATS = (
    "OME-TIFF / tiled pyramidal TIFF (.ome.tif, .tif, .tiff)",
    "PNG / JPEG (.png, .jpg, .jpeg)",
    "Aperio SVS (.svs), Hamamatsu NDPI (.ndpi), MIRAX (.mrxs), Leica SCN, Ventana BIF (via OpenSlide: pip install hubseg[openslide])",
)

BACKGROUND_VALUE = 255  # outside the slide we pretend to see empty glass
# Largest source crop decoded at once by read_region; larger reads are split into row bands.
_MAX_SOURCE_PIXELS = 32 * 1024 * 1024

UNIT_TO_UM = {
    "pm": 1e-6, "nm": 1e-3, "µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0,
    "mm": 1e3, "cm": 1e4, "dm": 1e5, "m": 1e6, "å": 1e-4, "Å": 1e-4, "angstrom": 1e-4,
}


def supported_formats_text() -> str:
    return "; ".join(SUPPORTED_FORMATS)


def plausible_pixel_size(pixel_size_um: float | None) -> float | None:
    """A file's calibration if it lies in the plausible range (``hubseg.limits``, the one the CLI and the server
    enforce), else ``None``: then the slide counts as uncalibrated and the user is asked for the pixel size
    (values outside come from default 72-dpi tags or unit mix-ups, not a microscope)."""
    if pixel_size_um is None or not math.isfinite(pixel_size_um):
        return None
    if PIXEL_SIZE_MIN_UM <= pixel_size_um <= PIXEL_SIZE_MAX_UM:
        return float(pixel_size_um)
    return None


def validate_pixel_size(value: float | None, what: str = "pixel size") -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number of µm per pixel (e.g. 0.5), got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"{what} must be a positive number of µm per pixel (e.g. 0.5), got {value}")
    return value


@dataclass(frozen=True)
class Level:
    width: int
    height: int
    downsample: float  # level-0 px per level px (of the slide's own level 0)


class Slide:
    """A multi-resolution image in level-0 pixel coordinates.

    Subclasses implement ``_levels`` and ``_read_level(level, x, y, w, h)`` (level coordinates, inside the
    level). ``origin``/``scale`` place the image's own level 0 in the global level-0 frame (only
    :class:`ArraySlide` uses them).
    """

    path: Path | None = None
    format_name: str = "image"

    def __init__(self, pixel_size_um: float, levels: list[Level], origin=(0.0, 0.0), scale: float = 1.0):
        self.pixel_size_um = float(pixel_size_um)
        self._levels = levels
        self._origin = (float(origin[0]), float(origin[1]))
        self._scale = float(scale)

    # ---- geometry -------------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 (width, height) of the frame the image lives in (its far corner)."""
        x, y, w, h = self.bounds
        return (int(math.ceil(x + w)), int(math.ceil(y + h)))

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """Level-0 (x, y, width, height) actually covered by image pixels."""
        lvl = self._levels[0]
        return (
            int(round(self._origin[0])),
            int(round(self._origin[1])),
            int(round(lvl.width * self._scale)),
            int(round(lvl.height * self._scale)),
        )

    @property
    def level_count(self) -> int:
        return len(self._levels)

    @property
    def level_dimensions(self) -> list[tuple[int, int]]:
        return [(lv.width, lv.height) for lv in self._levels]

    @property
    def level_downsamples(self) -> list[float]:
        """Global level-0 px per level px, for each level."""
        return [lv.downsample * self._scale for lv in self._levels]

    def best_level(self, downsample: float) -> int:
        """Coarsest level whose downsample is not coarser than ``downsample`` (level 0 if none)."""
        best = 0
        for index, ds in enumerate(self.level_downsamples):
            if ds <= downsample * 1.01 and ds >= self.level_downsamples[best]:
                best = index
        return best

    # ---- reading --------------------------------------------------------------------------------
    def read_region(self, x: float, y: float, width: float, height: float, pixel_size_um: float | None = None) -> np.ndarray:
        """RGB uint8 of the level-0 region ``(x, y, width, height)`` resampled to ``pixel_size_um``.

        The output has ``round(width / d) × round(height / d)`` pixels with ``d = pixel_size_um /
        self.pixel_size_um``; areas outside the image are white.
        """
        pixel_size_um = self.pixel_size_um if pixel_size_um is None else validate_pixel_size(pixel_size_um)
        if width <= 0 or height <= 0:
            raise InvalidInputError(f"region width and height must be positive, got {width}×{height}")
        downsample = pixel_size_um / self.pixel_size_um
        out_w = max(1, int(round(width / downsample)))
        out_h = max(1, int(round(height / downsample)))
        return self.read_scaled(x, y, out_w, out_h, downsample)

    def read_scaled(self, x: float, y: float, out_w: int, out_h: int, downsample: float) -> np.ndarray:
        """``out_h × out_w`` RGB pixels whose pixel (i, j) covers level-0 ``[x + j·d, x + (j+1)·d)`` etc.

        Pixel values depend only on the global grid ``(x mod d, y mod d)``, not on the window: this is
        what lets overlapping tiles agree exactly.
        """
        level = self.best_level(downsample)
        rel = downsample / self.level_downsamples[level]  # source px per output px
        # Split very large reads into row bands so memory stays bounded (e.g. single-level slides).
        source_pixels = (out_w * rel) * (out_h * rel)
        if source_pixels > _MAX_SOURCE_PIXELS and out_h > 1:
            rows_per_band = max(1, int(_MAX_SOURCE_PIXELS / max(1.0, out_w * rel * rel)))
            out = np.empty((out_h, out_w, 3), np.uint8)
            for row in range(0, out_h, rows_per_band):
                rows = min(rows_per_band, out_h - row)
                out[row:row + rows] = self._read_scaled_once(x, y + row * downsample, out_w, rows, downsample, level)
            return out
        return self._read_scaled_once(x, y, out_w, out_h, downsample, level)

    def _read_scaled_once(self, x: float, y: float, out_w: int, out_h: int, downsample: float, level: int) -> np.ndarray:
        level_ds = self.level_downsamples[level]
        rel = downsample / level_ds
        # Source box in level coordinates (continuous), relative to the image's own origin.
        sx0 = (x - self._origin[0]) / level_ds
        sy0 = (y - self._origin[1]) / level_ds
        sx1 = sx0 + out_w * rel
        sy1 = sy0 + out_h * rel
        if abs(rel - 1.0) < 1e-9 and float(sx0).is_integer() and float(sy0).is_integer():
            return self._read_level_padded(level, int(sx0), int(sy0), out_w, out_h)
        margin = int(math.ceil(max(rel, 1.0) * 2)) + 2  # covers the bilinear filter's support
        ix0 = int(math.floor(sx0)) - margin
        iy0 = int(math.floor(sy0)) - margin
        ix1 = int(math.ceil(sx1)) + margin
        iy1 = int(math.ceil(sy1)) + margin
        crop = self._read_level_padded(level, ix0, iy0, ix1 - ix0, iy1 - iy0)
        image = Image.fromarray(crop)
        box = (sx0 - ix0, sy0 - iy0, sx1 - ix0, sy1 - iy0)
        resized = image.resize((out_w, out_h), Image.Resampling.BILINEAR, box=box)
        return np.asarray(resized, dtype=np.uint8)

    def _read_level_padded(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        lv = self._levels[level]
        out = np.full((h, w, 3), BACKGROUND_VALUE, np.uint8)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, lv.width), min(y + h, lv.height)
        if x1 > x0 and y1 > y0:
            out[y0 - y:y1 - y, x0 - x:x1 - x] = self._read_level(level, x0, y0, x1 - x0, y1 - y0)
        return out

    def _read_level(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path) if self.path else ''!r}, dimensions={self.dimensions}, "
                f"pixel_size_um={self.pixel_size_um:g}, levels={self.level_count})")


def to_rgb(array: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Any grey, RGB or RGBA array (H×W[×C], any dtype) to RGB uint8 by :mod:`hubseg.pixels`' rule."""
    return to_rgb8(array, scale)


# ---- array ------------------------------------------------------------------------------------------
class ArraySlide(Slide):
    """An in-memory RGB image placed in a slide's level-0 frame.

    ``rgb`` pixel (i, j) covers level-0 ``origin + (j, i) · downsample``; ``pixel_size_um`` is the slide's
    level-0 pixel size (the array's own pixels are ``pixel_size_um · downsample`` wide). Detection results on
    an ArraySlide are therefore in the original slide's level-0 coordinates.
    """

    format_name = "array"

    def __init__(self, rgb: np.ndarray, pixel_size_um: float, origin=(0, 0), downsample: float = 1.0):
        pixel_size_um = validate_pixel_size(pixel_size_um)
        if pixel_size_um is None:
            raise MissingPixelSizeError("an ArraySlide needs the pixel size of level 0 in µm per pixel (e.g. 0.5)")
        downsample = float(downsample)
        if not (math.isfinite(downsample) and downsample > 0):
            raise InvalidInputError(f"downsample must be a positive number, got {downsample}")
        self._rgb = to_rgb(rgb)
        h, w = self._rgb.shape[:2]
        if h == 0 or w == 0:
            raise InvalidInputError("the image is empty (0 pixels)")
        super().__init__(pixel_size_um, [Level(w, h, 1.0)], origin=origin, scale=downsample)

    def _read_level(self, level, x, y, w, h):
        return self._rgb[y:y + h, x:x + w]


# ---- PIL --------------------------------------------------------------------------------------------
class PILSlide(ArraySlide):
    """PNG/JPEG etc.: one level held in memory; the pixel size must be given (these formats rarely carry one)."""

    format_name = "png/jpeg"

    def __init__(self, path: Path, pixel_size_um: float | None):
        try:
            rgb = read_rgb8(path)
        except (OSError, Image.DecompressionBombError, ValueError, RuntimeError) as error:
            raise UnsupportedFormatError(
                f"cannot read {path.name} as an image ({error}); supported formats: {supported_formats_text()}"
            ) from None
        if pixel_size_um is None:
            raise MissingPixelSizeError(
                f"{path.name} has no pixel-size calibration (PNG/JPEG carry none); pass it with "
                f"--pixel-size UM (µm per pixel, e.g. --pixel-size 0.5)"
            )
        super().__init__(rgb, pixel_size_um)
        self.path = path


