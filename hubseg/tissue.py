"""Tissue detection on a low-resolution view (HSV saturation + Otsu), so empty glass never reaches the model."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

# Otsu on saturation is clamped: glass is below ~0.04, stained tissue (PAS, H&E) above ~0.1. The clamp keeps
# Otsu from splitting an all-tissue region into two halves, or from calling faint noise tissue.
_MIN_THRESHOLD = 0.04
_MAX_THRESHOLD = 0.10
DEFAULT_TISSUE_PIXEL_SIZE_UM = 8.0
_BAND_PIXELS = 4 * 1024 * 1024  # source pixels per band read


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: values ``> threshold`` are the upper class."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0.5
    centers = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist)
    weight1 = total - weight0
    mean0 = np.cumsum(hist * centers) / np.maximum(weight0, 1e-12)
    mean1 = ((hist * centers).sum() - np.cumsum(hist * centers)) / np.maximum(weight1, 1e-12)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    # Class 0 = bins 0..k; on a plateau of equal scores (separated clusters) take its middle.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    k = int((best[0] + best[-1]) // 2)
    return float(edges[k + 1])


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in [0, 1]; near-black pixels (scanner borders, pen) count as unsaturated."""
    rgb = rgb.astype(np.float32)
    high = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    sat = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    sat[high < 20] = 0.0
    return sat


def tissue_mask(
    slide,
    pixel_size_um: float | None = None,
    region: tuple[float, float, float, float] | None = None,
    dilate_um: float = 20.0,
    should_cancel=None,
) -> tuple[np.ndarray, float]:
    """Boolean tissue mask of ``region`` (level-0 x, y, w, h; default the slide bounds) and its pixel size.

    The region is read at ``pixel_size_um`` (default 8 µm/px, never finer than the slide) from the best
    pyramid level, in row bands so memory stays bounded even for single-level slides. The mask is cleaned
    (opening, small-object removal) and dilated by ``dilate_um`` so tiles at tissue edges are kept.
    ``should_cancel()`` is checked before every band read (raises :class:`hubseg.errors.Cancelled`).
    """
    if region is None:
        region = slide.bounds
    x, y, w, h = (float(v) for v in region)
    if pixel_size_um is None:
        pixel_size_um = max(DEFAULT_TISSUE_PIXEL_SIZE_UM, slide.pixel_size_um)
    downsample = pixel_size_um / slide.pixel_size_um
    out_w = max(1, int(math.ceil(w / downsample)))
    out_h = max(1, int(math.ceil(h / downsample)))
    sat = np.empty((out_h, out_w), np.float32)
    # Bound the *source* pixels decoded per band (a single-level slide is read at full resolution).
    level = slide.best_level(downsample)
    rel = downsample / slide.level_downsamples[level]
    rows_per_band = max(1, int(_BAND_PIXELS / (out_w * max(1.0, rel) ** 2)))
    for row in range(0, out_h, rows_per_band):
        if should_cancel is not None and should_cancel():
            from hubseg.errors import Cancelled

            raise Cancelled("cancelled during tissue detection")
        rows = min(rows_per_band, out_h - row)
        rgb = slide.read_scaled(x, y + row * downsample, out_w, rows, downsample)
        sat[row:row + rows] = saturation(rgb)
    threshold = float(np.clip(otsu_threshold(sat), _MIN_THRESHOLD, _MAX_THRESHOLD))
    mask = sat > threshold
    mask = ndi.binary_opening(mask, structure=np.ones((2, 2), bool))
    labels, count = ndi.label(mask)
    if count:
        # Drop specks smaller than ~ (50 µm)^2: dust, not tissue.
        min_pixels = max(1, int((50.0 / pixel_size_um) ** 2))
        sizes = ndi.sum(mask, labels, index=np.arange(1, count + 1))
        keep = np.zeros(count + 1, bool)
        keep[1:] = sizes >= min_pixels
        mask = keep[labels]
    radius = int(math.ceil(dilate_um / pixel_size_um))
    if radius > 0 and mask.any():
        mask = ndi.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=radius)
    return mask, float(pixel_size_um)
