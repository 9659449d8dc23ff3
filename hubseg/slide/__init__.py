"""Slides: open whole-slide images and read any level-0 region at any pixel size.

Readers:
- OME-TIFF and generic tiled / pyramidal TIFF through **tifffile**; regions are read through its
  zarr store (only the tiles a region touches are decoded, never a whole level).
- PNG / JPEG (and other PIL formats) as one-level images held in memory (they are small by nature).
- Aperio SVS, Hamamatsu NDPI, MIRAX etc. through **openslide-python** (optional extra
  ``pip install hubseg[openslide]``); TIFF-based SVS/NDPI fall back to tifffile when OpenSlide is missing.
- :class:`ArraySlide` for an RGB array already in memory (e.g. a region uploaded by QuPath), placed in
  the slide's level-0 frame by an origin and a downsample.

All coordinates are level-0 pixels. ``read_region(x, y, w, h, pixel_size_um)`` picks the best pyramid
level (the coarsest level that is still no coarser than requested) and resamples to the requested pixel
size, upsampling when the slide is coarser than requested. Resampling is done with PIL's box-aware resize
on a crop with a margin, so the value of an output pixel depends only on its position in the global
output grid: two overlapping reads agree on the pixels they share (the tiling invariants rely on it).
"""

from hubseg.slide.base import (
    OPENSLIDE_ONLY_SUFFIXES,
    OPENSLIDE_TIFF_SUFFIXES,
    PIL_SUFFIXES,
    SUPPORTED_FORMATS,
    TIFF_SUFFIXES,
    ArraySlide,
    PILSlide,
    Slide,
    supported_formats_text,
    validate_pixel_size,
)
from hubseg.slide.opener import open_slide
from hubseg.slide.readers import OpenSlideSlide, TiffSlide

__all__ = [
    "OPENSLIDE_ONLY_SUFFIXES", "OPENSLIDE_TIFF_SUFFIXES", "PIL_SUFFIXES", "SUPPORTED_FORMATS", "TIFF_SUFFIXES",
    "ArraySlide", "OpenSlideSlide", "PILSlide", "Slide", "TiffSlide", "open_slide", "supported_formats_text",
    "validate_pixel_size",
]
