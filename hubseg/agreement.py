"""Member agreement of an ensemble's objects: how much the members agree that an object is there.

After instance extraction, each object's crop (its bounding box at model scale plus a margin, on the detection
map's pixel grid) is run once through every member (no flips; the ensemble's maps already carry TTA). Two
measures are computed per object, both in 0..1 with 1 = full agreement:

- ``fraction``: the fraction of members whose own mask (probability > the detection threshold) has a connected
  component matching the object at IoU > 0.5;
- ``std``: ``1 − 2·`` the members' pixel-wise standard deviation of probability, averaged over the object's pixels
  (2·std ≤ 1 for values in 0..1).

:data:`AGREEMENT_MEASURE` names the one reported as the object's ``agreement`` (GeoJSON ``hubseg agreement``):
the fraction, which separated true from false held-out objects better in docs/models.md's comparison (a small
sample, said there). Cost: one member pass per object crop, so about
the objects' share of the tissue (plus margins) on top of the ensemble's own pass.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy import ndimage as ndi

from hubseg.errors import Cancelled
from hubseg.geometry import rasterize_geometry

AGREEMENT_MEASURES = ("fraction", "std")
AGREEMENT_MEASURE = "fraction"
MATCH_IOU = 0.5
MARGIN_PX = 16  # model-scale px around the object: a member's slightly larger mask is not cut by the crop
MAX_CROP_PIXELS = 2048 * 2048  # an object larger than this (at model scale) gets no agreement (memory bound)


def member_probabilities(model, rgb: np.ndarray) -> np.ndarray:
    """Each member's foreground probability of one uint8 ``H×W×3`` crop, float32 ``M×H×W``."""
    with torch.inference_mode():
        logits = model.logits(model.preprocess(rgb))
        return model.member_probabilities(logits.float())[:, 0].cpu().numpy().astype(np.float32)


def agreement_measures(probabilities: np.ndarray, mask: np.ndarray, threshold: float) -> dict[str, float]:
    """``{"fraction", "std"}`` for one object (boolean ``mask``) given members' probabilities ``M×H×W``."""
    inside = probabilities[:, mask]
    std = float(inside.std(axis=0).mean()) if inside.size else 0.0
    area = int(mask.sum())
    hits = 0
    for member in probabilities:
        labels, _ = ndi.label(member > threshold)
        overlapping = np.unique(labels[mask])
        best = 0.0
        for label in overlapping[overlapping > 0]:
            component = labels == label
            intersection = int((component & mask).sum())
            best = max(best, intersection / float(area + int(component.sum()) - intersection))
        hits += best > MATCH_IOU
    return {"fraction": hits / float(len(probabilities)), "std": max(0.0, 1.0 - 2.0 * std)}


def compute_agreement(slide, model, objects, origin: tuple[float, float], downsample: float, threshold: float,
                      should_cancel: Callable[[], bool] | None = None) -> None:
    """Set ``agreement`` (and both measures in ``extra``) on each object of an ensemble's detection.

    ``origin``/``downsample``: the detection map's level-0 origin and level-0 px per map px, so crops share its
    pixel grid. Objects larger than :data:`MAX_CROP_PIXELS` keep ``agreement = None``.
    """
    ox, oy = float(origin[0]), float(origin[1])
    d = float(downsample)
    for obj in objects:
        if should_cancel is not None and should_cancel():
            raise Cancelled("detection cancelled while measuring member agreement")
        minx, miny, maxx, maxy = obj.geometry.bounds
        j0 = math.floor((minx - ox) / d) - MARGIN_PX
        i0 = math.floor((miny - oy) / d) - MARGIN_PX
        j1 = math.ceil((maxx - ox) / d) + MARGIN_PX
        i1 = math.ceil((maxy - oy) / d) + MARGIN_PX
        if (j1 - j0) * (i1 - i0) > MAX_CROP_PIXELS:
            continue
        x0, y0 = ox + j0 * d, oy + i0 * d
        rgb = slide.read_scaled(x0, y0, j1 - j0, i1 - i0, d)
        mask = rasterize_geometry(obj.geometry, (i1 - i0, j1 - j0), (x0, y0), d)
        if not mask.any():
            continue
        measures = agreement_measures(member_probabilities(model, rgb), mask, threshold)
        obj.extra.update({f"agreement_{name}": round(value, 6) for name, value in measures.items()})
        obj.agreement = round(measures[AGREEMENT_MEASURE], 6)


__all__ = ["AGREEMENT_MEASURE", "AGREEMENT_MEASURES", "agreement_measures", "compute_agreement", "member_probabilities"]
