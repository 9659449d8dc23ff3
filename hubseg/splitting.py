"""Touching instances → separate objects: a watershed on the distance transform, merged back unless the neck is narrow.

Two glomeruli that touch (in the tissue, or where two scanned fields meet) become one connected component of
the thresholded probability. Their union looks like two discs joined by a neck: the Euclidean distance
transform has one peak per glomerulus (its inscribed radius) and a saddle at the neck (half the neck width).
A single glomerulus, however irregular (lobulated tuft, notch at the vascular pole, hook-shaped polar cut),
has either one peak or peaks joined by a ridge almost as high as the lower one.

So: seeds = local maxima of the distance transform at least ``min_radius_um`` high and apart
(``skimage.feature.peak_local_max``), parts = ``skimage.segmentation.watershed`` of the negated distance,
then neighbouring parts are merged back, widest neck first, while the neck is wider than ``neck_ratio`` ×
the smaller part's inscribed radius or a part is smaller than ``min_part_area_um2`` (glomerulus-sized:
:func:`split_options_for` takes it from the model card's reference areas). Everything is computed
from the component alone (a function of its own pixels), which keeps the row-band responsibility and the
banded == whole-map guarantees of :mod:`hubseg.instances` untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

# The smallest glomerular profile worth its own object has an inscribed circle of ≈ 40 µm diameter (a polar
# cut); a 20 µm radius is also well above the model's 1.5 µm/px pixel, so seeds are not pixel noise.
DEFAULT_MIN_RADIUS_UM = 20.0
# A neck narrower than half the smaller glomerulus' inscribed radius means two objects. Checked on every
# annotated glomerulus of the AIDPATH tiles at 1.5 µm/px (none splits) and on the merged pair of the sample
# slide (tests/engine/test_splitting.py).
DEFAULT_NECK_RATIO = 0.7
# A split may only separate parts that are each glomerulus-sized: at least the 10th percentile of the true
# glomeruli's areas the model was trained on (its card's ``energy_gate.reference.area_um2.p10``). Without one,
# that of the AIDPATH tiles' annotated glomeruli (28 objects, p10 = 3533 µm², median 18 853 µm²). A smaller
# part (a sclerosed tuft beside its capsule, a bulge of a lobulated tuft) stays with its neighbour.
DEFAULT_MIN_PART_AREA_UM2 = 3500.0


@dataclass(frozen=True)
class SplitOptions:
    """How touching instances are split (µm, so the result does not depend on the map's pixel size)."""

    min_radius_um: float = DEFAULT_MIN_RADIUS_UM
    neck_ratio: float = DEFAULT_NECK_RATIO
    min_part_area_um2: float = DEFAULT_MIN_PART_AREA_UM2  # parts below max(this, π·min_radius²) are merged back


def split_options_for(card) -> SplitOptions:
    """The split a model's detections use: parts at least the card's reference glomerulus area (its energy
    reference's ``area_um2.p10``, measured on the true objects of its training images), else the default."""
    gate = getattr(card, "energy_gate", None)
    reference = gate.get("reference") if isinstance(gate, dict) else None
    area = reference.get("area_um2") if isinstance(reference, dict) else None
    if isinstance(area, dict) and area.get("p10"):
        return SplitOptions(min_part_area_um2=float(area["p10"]))
    return SplitOptions()


def _necks(parts: np.ndarray, dist: np.ndarray) -> dict[tuple[int, int], float]:
    """Height of the distance transform's saddle between each pair of 4-adjacent parts."""
    necks: dict[tuple[int, int], float] = {}
    for axis in (0, 1):
        a = parts[:-1, :] if axis == 0 else parts[:, :-1]
        b = parts[1:, :] if axis == 0 else parts[:, 1:]
        da = dist[:-1, :] if axis == 0 else dist[:, :-1]
        db = dist[1:, :] if axis == 0 else dist[:, 1:]
        touching = (a != b) & (a > 0) & (b > 0)
        if not touching.any():
            continue
        low = np.minimum(da[touching], db[touching])
        for p, q, h in zip(a[touching], b[touching], low):
            key = (int(min(p, q)), int(max(p, q)))
            if h > necks.get(key, -1.0):
                necks[key] = float(h)
    return necks


def split_touching(mask: np.ndarray, pixel_size_um: float, options: SplitOptions | None = None) -> tuple[np.ndarray, int]:
    """Label image (int32, 0 = outside ``mask``) of the objects in one connected ``mask`` and their count.

    ``pixel_size_um`` is the size of a mask pixel. Returns ``(mask.astype(int32), 1)`` when nothing is split.
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    options = options or SplitOptions()
    mask = np.asarray(mask, bool)
    single = mask.astype(np.int32), 1
    pixel = float(pixel_size_um)
    min_radius_px = float(options.min_radius_um) / pixel
    # Cheap exits: too small to hold two discs of the minimum radius.
    if mask.sum() < 2 * np.pi * min_radius_px**2:
        return single
    # Pad so the bounding box edge counts as background.
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    seeds = peak_local_max(dist, min_distance=max(1, int(round(min_radius_px))), threshold_abs=min_radius_px,
                           labels=mask.astype(np.int32), exclude_border=False)
    if len(seeds) < 2:
        return single
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(seeds.T)] = np.arange(1, len(seeds) + 1)
    parts = watershed(-dist, markers, mask=mask)
    if (mask & (parts == 0)).any():
        return single  # mask not connected (clipped by a geometry): leave it whole rather than lose pixels

    min_area_px = max(float(options.min_part_area_um2) / pixel**2, np.pi * min_radius_px**2)
    while True:
        count = int(parts.max())
        if count < 2:
            break
        index = np.arange(1, count + 1)
        peaks = np.asarray(ndi.maximum(dist, parts, index)) if count else np.zeros(0)
        areas = np.asarray(ndi.sum(mask, parts, index))
        best, best_key = None, None
        for (p, q), neck in _necks(parts, dist).items():
            smaller = min(peaks[p - 1], peaks[q - 1])
            # Merge priority: a tiny part first, then the widest neck relative to the smaller radius.
            too_small = min(areas[p - 1], areas[q - 1]) < min_area_px
            score = (too_small, neck / max(smaller, 1e-6))
            if best is None or score > best:
                best, best_key = score, (p, q)
        if best_key is None or not (best[0] or best[1] > float(options.neck_ratio)):
            break
        p, q = best_key
        parts[parts == q] = p
        # Relabel 1..n (0 stays outside) so peaks/areas stay indexable.
        lookup = np.zeros(count + 1, np.int32)
        remaining = np.unique(parts[parts > 0])
        lookup[remaining] = np.arange(1, remaining.size + 1)
        parts = lookup[parts]
    count = int(parts.max())
    return (parts.astype(np.int32), count) if count >= 2 else single


__all__ = ["SplitOptions", "split_touching", "split_options_for", "DEFAULT_MIN_RADIUS_UM", "DEFAULT_NECK_RATIO",
           "DEFAULT_MIN_PART_AREA_UM2"]
