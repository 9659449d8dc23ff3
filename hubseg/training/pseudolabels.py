"""Pseudo-labels for self-training: a teacher's detections turned into pixel targets that do not
teach the student to keep missing what the teacher missed.

The teacher runs through :func:`hubseg.pipeline.detect` (tiling, TTA, instances, energy gate) on a whole
unlabelled image; targets are built at the model's pixel size, on the grid of the teacher's maps:

- **glomerulus (1)**: confident objects — not ``uncertain`` under the card's energy gate and, when the card
  has a review model and objects carry a ``review_score``, a score at or above the review cut-off;
- **ignore (255)**: uncertain objects, and everything else not named below;
- **background (0)**: only where the teacher's probability is below a low threshold **and** every pixel within
  ``margin_um`` is below it too (no object, no uncertain blob nearby), on tissue.

So a glomerulus the teacher half-saw (probability above the low threshold) stays ignored, never background.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from hubseg.errors import InvalidInputError
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.sources import TrainingImage

DEFAULT_MARGIN_UM = 30.0
# The card calibrates objects (energy gate, review model), not pixels: the low probability under which a pixel
# may become background is expressed relative to the card's own probability threshold (0.5 → 0.1).
BACKGROUND_FRACTION_OF_THRESHOLD = 0.2
IDENTITY_BYTES = 1 << 20  # identity hash covers the first MiB (+ the size): cheap on multi-GB slides
BAND_ROWS = 1024


def image_identity(path: str | os.PathLike) -> dict[str, Any]:
    """``{path, size, sha256_first_mib}``: identifies an image file without storing any of its pixels."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(IDENTITY_BYTES))
    return {"path": str(path.resolve()), "size": path.stat().st_size, "sha256_first_mib": digest.hexdigest()}


def review_cutoff(card) -> float | None:
    """The review model's cut-off from the card (the ``review_model``), if the card has one."""
    review = getattr(card, "review_model", None)
    if isinstance(review, dict) and review.get("cutoff") is not None:
        return float(review["cutoff"])
    return None


@dataclass
class PseudoLabelRules:
    """How teacher output becomes targets. ``None`` = derived from the card (see :func:`resolve`)."""

    margin_um: float = DEFAULT_MARGIN_UM
    background_probability: float | None = None  # default: card.threshold × BACKGROUND_FRACTION_OF_THRESHOLD

    def resolve(self, card) -> dict[str, Any]:
        """The concrete thresholds for one teacher, as recorded in the card's provenance."""
        gate = card.energy_gate if isinstance(card.energy_gate, dict) else None
        energy_cutoff = None if gate is None or gate.get("cutoff") is None else float(gate["cutoff"])
        score_cutoff = review_cutoff(card)
        if energy_cutoff is None and score_cutoff is None:
            raise InvalidInputError(
                f"model {card.name} has no calibrated confidence (no energy gate, no review model), so its detections "
                "cannot be split into confident and uncertain: self-train from a model whose card has an energy gate "
                "(e.g. the shipped default, or a fine-tune trained with validation images)"
            )
        low = self.background_probability
        if low is None:
            low = float(card.threshold) * BACKGROUND_FRACTION_OF_THRESHOLD
        if not 0.0 < float(low) < float(card.threshold):
            raise InvalidInputError(
                f"background probability must be between 0 and the model's threshold {card.threshold}; got {low}"
            )
        if not float(self.margin_um) >= 0:
            raise InvalidInputError(f"margin must be >= 0 µm, got {self.margin_um}")
        return {"energy_cutoff": energy_cutoff, "review_cutoff": score_cutoff, "threshold": float(card.threshold),
                "background_probability": round(float(low), 6), "margin_um": float(self.margin_um)}


def is_confident(obj, rules: dict[str, Any]) -> bool:
    """Confident = passed the energy gate and, where scored, the review cut-off."""
    if obj.uncertain:
        return False
    score = getattr(obj, "review_score", None)
    if rules.get("review_cutoff") is not None and score is not None:
        return float(score) >= rules["review_cutoff"]
    return True


@dataclass
class PseudoLabelImage:
    """One unlabelled image after the teacher pass: the training image and what its targets hold."""

    image: TrainingImage
    stats: dict[str, Any] = field(default_factory=dict)
    confident_energies: list[float] = field(default_factory=list)


def _paint_window(mask: np.ndarray, geometry, origin, downsample: float) -> None:
    """OR a level-0 geometry into ``mask`` (map grid), rasterising only over its bounding box."""
    from hubseg.geometry import rasterize_geometry

    minx, miny, maxx, maxy = geometry.bounds
    x0 = max(0, int(math.floor((minx - origin[0]) / downsample)) - 1)
    y0 = max(0, int(math.floor((miny - origin[1]) / downsample)) - 1)
    x1 = min(mask.shape[1], int(math.ceil((maxx - origin[0]) / downsample)) + 1)
    y1 = min(mask.shape[0], int(math.ceil((maxy - origin[1]) / downsample)) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    window_origin = (origin[0] + x0 * downsample, origin[1] + y0 * downsample)
    mask[y0:y1, x0:x1] |= rasterize_geometry(geometry, (y1 - y0, x1 - x0), window_origin, downsample)


def build_targets(low_probability: np.ndarray, objects, rules: dict[str, Any], origin, downsample: float,
                  pixel_size_um: float, tissue: np.ndarray | None = None
                  ) -> tuple[np.ndarray, dict[str, Any], list[float]]:
    """Pixel targets (uint8: 0 / 1 / 255) on the maps' grid from the teacher's low-probability mask and objects.

    Returns (targets, counts, the confident objects' mean energies). ``tissue`` (same grid) limits background
    to tissue: glass is known background that teaches nothing, so it is ignored rather than sampled.
    """
    shape = low_probability.shape
    confident = np.zeros(shape, bool)
    near = ~low_probability  # uncertain blobs: anything at or above the low threshold, detected or not
    n_confident = n_uncertain = 0
    energies = []
    for obj in objects:
        _paint_window(near, obj.geometry, origin, downsample)
        if is_confident(obj, rules):
            _paint_window(confident, obj.geometry, origin, downsample)
            n_confident += 1
            energies.append(float(obj.mean_energy))
        else:
            n_uncertain += 1
    margin_px = rules["margin_um"] / pixel_size_um
    if near.any():
        # distance (map px) to the nearest object/blob pixel; background must be farther than the margin
        distance = cv2.distanceTransform((~near).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        far = distance > margin_px
        del distance
    else:
        far = np.ones(shape, bool)
    background = low_probability & far
    if tissue is not None:
        background &= tissue
    label = np.full(shape, IGNORE_INDEX, np.uint8)
    label[background] = 0
    label[confident] = 1
    tissue_pixels = int(tissue.sum()) if tissue is not None else int(label.size)
    ignored_in_tissue = int(((label == IGNORE_INDEX) & tissue).sum()) if tissue is not None else int((label == IGNORE_INDEX).sum())
    stats = {
        "confident_objects": n_confident,
        "uncertain_objects": n_uncertain,
        "positive_pixels": int(confident.sum()),
        "background_pixels": int(background.sum()),
        "ignored_pixels": int((label == IGNORE_INDEX).sum()),
        "tissue_pixels": tissue_pixels,
        "ignored_tissue_fraction": round(ignored_in_tissue / tissue_pixels, 4) if tissue_pixels else None,
    }
    return label, stats, energies


def pseudo_label_slide(slide, model, rules: dict[str, Any], name: str, source: str = "", options=None,
                       progress: Callable | None = None, should_cancel: Callable | None = None) -> PseudoLabelImage:
    """Teacher pass over a whole slide → a :class:`TrainingImage` with pseudo-label targets (RGB read lazily)."""
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.tissue import tissue_mask

    options = options or DetectionOptions()
    kept: dict[str, Any] = {}

    def keep_maps(maps) -> None:
        rows, cols = maps.shape
        low = np.empty((rows, cols), bool)
        for y0 in range(0, rows, BAND_ROWS):
            low[y0:y0 + BAND_ROWS] = maps.read_rows("probability", y0, y0 + BAND_ROWS) < rules["background_probability"]
        kept.update(low=low, origin=tuple(maps.origin), downsample=float(maps.downsample),
                    pixel_size_um=float(maps.pixel_size_um))

    result = detect(slide, model, options=options, progress=progress, should_cancel=should_cancel,
                    maps_callback=keep_maps)
    low, origin, downsample = kept["low"], kept["origin"], kept["downsample"]
    tissue = None
    if options.tissue_detection:
        mask, _ = tissue_mask(slide, region=result.region)
        tissue = cv2.resize(mask.astype(np.uint8), (low.shape[1], low.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    label, stats, energies = build_targets(low, result.objects, rules, origin, downsample, kept["pixel_size_um"], tissue)
    del low
    positives = []
    for obj in result.objects:
        if is_confident(obj, rules):
            cx, cy = obj.centroid
            positives.append(((cx - origin[0]) / downsample, (cy - origin[1]) / downsample))
    image = TrainingImage(name=name, label=label, pixel_size_um=kept["pixel_size_um"], slide=slide, origin=origin,
                          downsample=downsample, positives=positives, source=source)
    return PseudoLabelImage(image=image, stats=stats, confident_energies=energies)


class PseudoLabelSource:
    """Training source over teacher-labelled images (the trainer's ``load``/``describe`` protocol)."""

    kind = "pseudo-labels"

    def __init__(self, images: list[PseudoLabelImage], rules: dict[str, Any], teacher: str, identities: list[dict],
                 round_index: int = 1):
        self.images = images
        self.rules = rules
        self.teacher = teacher
        self.identities = identities
        self.round_index = round_index

    def load(self, model_pixel_size_um: float) -> list[TrainingImage]:
        for item in self.images:
            if abs(item.image.pixel_size_um - model_pixel_size_um) > 1e-6:
                raise InvalidInputError(
                    f"pseudo-labels were made at {item.image.pixel_size_um} µm/px but the student works at "
                    f"{model_pixel_size_um} µm/px; the student must keep the teacher's pixel size"
                )
        return [item.image for item in self.images]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "teacher": self.teacher, "round": self.round_index, "rules": self.rules,
                **summarize(self.images),
                "images": [{**identity, **item.stats} for identity, item in zip(self.identities, self.images)]}


def summarize(images: list[PseudoLabelImage]) -> dict[str, Any]:
    """Totals over images: pseudo-positive/uncertain objects and the fraction of tissue left ignored."""
    tissue = sum(i.stats["tissue_pixels"] for i in images)
    ignored = sum(i.stats["ignored_tissue_fraction"] * i.stats["tissue_pixels"] for i in images
                  if i.stats["ignored_tissue_fraction"] is not None)
    return {
        "image_count": len(images),
        "pseudo_positive_objects": sum(i.stats["confident_objects"] for i in images),
        "uncertain_objects": sum(i.stats["uncertain_objects"] for i in images),
        "ignored_tissue_fraction": round(ignored / tissue, 4) if tissue else None,
    }
