"""Readers for files with a pyramid: TIFF (OME, generic, SVS/NDPI fallback) through tifffile, vendor formats
through OpenSlide. ``hubseg.slide.opener.open_slide`` chooses between them; the base class, resampling and the
in-memory readers live in ``hubseg.slide.base``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from hubseg.errors import HubsegError, MissingPixelSizeError, UnsupportedFormatError
from hubseg.pixels import array_full_scale, full_scale
from hubseg.slide.base import (
    BACKGROUND_VALUE,
    UNIT_TO_UM,
    Level,
    Slide,
    plausible_pixel_size,
    supported_formats_text,
    to_rgb,
)


# ---- tifffile ---------------------------------------------------------------------------------------
def _file_pixel_size(tif, series, page0) -> float | None:
    """The pixel size the file states (µm): OME PhysicalSizeX, else Aperio MPP, else TIFF resolution tags."""
    found = None
    if tif.is_ome:
        found = plausible_pixel_size(_ome_pixel_size(tif.ome_metadata, tif.series.index(series)))
    if found is None:
        found = plausible_pixel_size(_aperio_pixel_size(getattr(page0, "description", "")))
    if found is None:
        found = plausible_pixel_size(_resolution_tag_pixel_size(page0, tif.imagej_metadata))
    return found


def _ome_pixel_size(ome_xml: str | None, image_index: int = 0) -> float | None:
    """PhysicalSizeX (converted to µm) of the ``image_index``-th OME Image (= tifffile series index)."""
    if not ome_xml:
        return None
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    images = [e for e in root if e.tag.endswith("}Image") or e.tag == "Image"]
    scope = images[image_index] if 0 <= image_index < len(images) else root
    for element in scope.iter():
        if element.tag.endswith("Pixels") and "PhysicalSizeX" in element.attrib:
            try:
                value = float(element.attrib["PhysicalSizeX"])
            except ValueError:
                return None
            unit = element.attrib.get("PhysicalSizeXUnit", "µm").strip()
            factor = UNIT_TO_UM.get(unit, UNIT_TO_UM.get(unit.lower()))
            return None if factor is None else value * factor
    return None


def _aperio_pixel_size(description: str | None) -> float | None:
    if not description:
        return None
    match = re.search(r"MPP\s*=\s*([0-9.eE+-]+)", description)
    if not match:
        return None
    try:
        return float(match.group(1))
    except ValueError:
        return None


def _resolution_tag_pixel_size(page, imagej_metadata: dict | None = None) -> float | None:
    tags = page.tags
    xres = tags.get("XResolution")
    unit = tags.get("ResolutionUnit")
    if xres is None:
        return None
    value = xres.value
    pixels_per_unit = value[0] / value[1] if isinstance(value, tuple) and value[1] else float(value if not isinstance(value, tuple) else 0)
    if not pixels_per_unit:
        return None
    unit_value = int(unit.value) if unit is not None else 1
    if unit_value == 2:  # inch
        return 25400.0 / pixels_per_unit
    if unit_value == 3:  # centimetre
        return 10000.0 / pixels_per_unit
    # Unit NONE: ImageJ (and QuPath through it) stores the calibration unit in its ImageDescription
    # ("unit=micron"), with XResolution in pixels per that unit.
    imagej_unit = str((imagej_metadata or {}).get("unit", "")).strip()
    factor = UNIT_TO_UM.get(imagej_unit, UNIT_TO_UM.get(imagej_unit.lower())) if imagej_unit else None
    return None if factor is None else factor / pixels_per_unit


class TiffSlide(Slide):
    """OME-TIFF and generic (tiled, pyramidal) TIFF read region by region through tifffile's zarr store."""

    format_name = "tiff"

    def __init__(self, path: Path, pixel_size_um: float | None):
        import tifffile
        import zarr

        try:
            self._tif = tifffile.TiffFile(path)
        except Exception as error:  # tifffile raises many types for foreign files
            raise UnsupportedFormatError(
                f"cannot read {path.name} as TIFF ({error}); supported formats: {supported_formats_text()}"
            ) from None
        try:
            # The main image is the largest series (label/macro/thumbnail images may come first).
            def plane_pixels(candidate):
                shape = dict(zip(candidate.axes, candidate.shape))
                return shape.get("Y", 0) * shape.get("X", 0)

            series = max(self._tif.series, key=plane_pixels)
            axes = series.axes
            levels_zarr = []
            levels = []
            base_w = base_h = None
            for index, level in enumerate(series.levels):
                shape = dict(zip(axes, level.shape))
                if "Y" not in shape or "X" not in shape:
                    raise UnsupportedFormatError(f"{path.name}: image axes {axes!r} have no Y/X plane")
                store = series.aszarr(level=index)
                levels_zarr.append(zarr.open(store, mode="r"))
                w, h = shape["X"], shape["Y"]
                if index == 0:
                    base_w, base_h = w, h
                levels.append(Level(w, h, (base_w / w + base_h / h) / 2.0))
            self._zarr = levels_zarr
            self._axes = axes
            self.path = path
            self.format_name = "ome-tiff" if self._tif.is_ome else ("svs" if self._tif.is_svs else "tiff")
            page0 = series.keyframe  # the series' first page (a TiffPage, with tags)
            found = _file_pixel_size(self._tif, series, page0)
            chosen = pixel_size_um if pixel_size_um is not None else found
            if chosen is None:
                raise MissingPixelSizeError(
                    f"{path.name} carries no pixel size (no OME PhysicalSizeX, TIFF resolution tags or Aperio MPP); "
                    f"pass it with --pixel-size UM (µm per pixel, e.g. --pixel-size 0.5)"
                )
            self.pixel_size_from_file = found
            self._value_scale = _slide_full_scale(self._zarr, page0)
            super().__init__(chosen, levels)
        except HubsegError:
            self._tif.close()
            raise
        except Exception as error:  # malformed or exotic TIFF structure
            self._tif.close()
            raise UnsupportedFormatError(
                f"cannot read {path.name} as a tiled RGB TIFF ({type(error).__name__}: {error}); "
                f"supported formats: {supported_formats_text()}"
            ) from None

    def _read_level(self, level, x, y, w, h):
        index = []
        for axis in self._axes:
            if axis == "Y":
                index.append(slice(y, y + h))
            elif axis == "X":
                index.append(slice(x, x + w))
            elif axis in "SC":
                index.append(slice(None))
            else:
                index.append(0)
        data = np.asarray(self._zarr[level][tuple(index)])
        kept = [a for a in self._axes if a in "YXSC"]
        # Bring to Y, X, channels.
        order = [kept.index("Y"), kept.index("X")] + [i for i, a in enumerate(kept) if a in "SC"]
        data = np.transpose(data, order)
        if data.ndim == 4:  # both S and C: merge
            data = data.reshape(data.shape[0], data.shape[1], -1)
        return to_rgb(data, self._value_scale)

    def close(self):
        self._tif.close()


_SCALE_PROBE_VALUES = 64 * 1024 * 1024  # read at most this many values to find a slide's bit depth


def _slide_full_scale(levels, page0) -> float | None:
    """One full scale for every read of a slide that is not 8-bit (:mod:`hubseg.pixels`): from the smallest
    pyramid level's maximum when that is small enough to read, else from the bits per sample."""
    smallest = levels[-1]
    if smallest.dtype == np.uint8 or smallest.dtype == bool:
        return None
    if int(np.prod(smallest.shape)) <= _SCALE_PROBE_VALUES:
        return array_full_scale(np.asarray(smallest[...]))
    if np.issubdtype(smallest.dtype, np.floating):
        return 1.0
    return full_scale(float(2 ** int(getattr(page0, "bitspersample", 16)) - 1))


# ---- openslide --------------------------------------------------------------------------------------
class OpenSlideSlide(Slide):
    """Vendor formats through OpenSlide (optional extra)."""

    format_name = "openslide"

    def __init__(self, path: Path, pixel_size_um: float | None):
        import openslide

        try:
            self._osr = openslide.OpenSlide(str(path))
        except openslide.OpenSlideError as error:
            raise UnsupportedFormatError(
                f"OpenSlide cannot read {path.name} ({error}); supported formats: {supported_formats_text()}"
            ) from None
        props = self._osr.properties
        found = None
        try:
            found = plausible_pixel_size(float(props.get(openslide.PROPERTY_NAME_MPP_X)))
        except (TypeError, ValueError):
            found = None
        chosen = pixel_size_um if pixel_size_um is not None else found
        if chosen is None:
            self._osr.close()
            raise MissingPixelSizeError(
                f"{path.name} carries no pixel size (openslide.mpp-x); pass it with --pixel-size UM (e.g. 0.25)"
            )
        self.pixel_size_from_file = found
        self.path = path
        # OpenSlide reports regions in level-0 coordinates, with bounds offsets for MIRAX etc.
        levels = [
            Level(w, h, float(ds))
            for (w, h), ds in zip(self._osr.level_dimensions, self._osr.level_downsamples)
        ]
        super().__init__(chosen, levels)

    def _read_level(self, level, x, y, w, h):
        ds = self._levels[level].downsample
        region = self._osr.read_region((int(round(x * ds)), int(round(y * ds))), level, (w, h))
        rgba = np.asarray(region)
        rgb = rgba[:, :, :3].copy()
        transparent = rgba[:, :, 3] == 0
        rgb[transparent] = BACKGROUND_VALUE
        return rgb

    def close(self):
        self._osr.close()
