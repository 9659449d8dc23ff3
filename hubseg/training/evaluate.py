"""Validation with the product's own detection path, and the calibrated energy gate.

Each validation image runs through :func:`hubseg.pipeline.detect` (tiling, blending, instance
extraction) at the model's pixel size; predicted polygons are rasterised back to model scale and
matched to the true objects at IoU > 0.5 (:mod:`hubseg.metrics`). Every predicted object keeps its
mean energy and whether it matched, which is what the energy gate is calibrated on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hubseg import metrics
from hubseg.gating import cutoff_for_reference, energy_gate, standardize_energies
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.sources import MIN_OBJECT_PIXELS, TrainingImage

MAX_VALIDATION_SIDE = 2048  # larger images are evaluated in windows around their objects


@dataclass
class EvaluationResult:
    """Pooled figures over validation images plus per-object (energy, matched) for the gate."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    intersection: int = 0
    total: int = 0  # |P| + |T| over valid pixels
    energies: list[float] = field(default_factory=list)
    matched: list[bool] = field(default_factory=list)
    images: int = 0
    features: list[dict[str, float]] = field(default_factory=list)  # raw review features per object (review_score)

    def add(self, other: "EvaluationResult") -> None:
        for name in ("tp", "fp", "fn", "intersection", "total", "images"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.energies.extend(other.energies)
        self.matched.extend(other.matched)
        self.features.extend(other.features)

    @property
    def dice(self) -> float:
        return 1.0 if self.total == 0 else 2.0 * self.intersection / self.total

    def summary(self) -> dict[str, Any]:
        return {
            "dice": round(self.dice, 4),
            **metrics.summarize(self.tp, self.fp, self.fn, digits=4),
            "images": self.images,
        }


def _windows(image: TrainingImage) -> list[tuple[int, int, int, int]]:
    height, width = image.shape
    if max(height, width) <= MAX_VALIDATION_SIDE:
        return [(0, 0, width, height)]
    side = 1024
    windows = []
    for cx, cy in image.positives[:16]:
        x0 = int(min(max(0, cx - side / 2), max(0, width - side)))
        y0 = int(min(max(0, cy - side / 2), max(0, height - side)))
        windows.append((x0, y0, min(side, width), min(side, height)))
    return windows or [(0, 0, min(side, width), min(side, height))]


def evaluate_image(model, image: TrainingImage, options=None, should_cancel: Callable[[], bool] | None = None) -> EvaluationResult:
    """Detect on one validation image (model scale) and match against its label raster."""
    import shapely

    from hubseg.geometry import rasterize_labels
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.review_score import raw_features
    from hubseg.slide import ArraySlide

    options = options or DetectionOptions(use_energy_gate=False, tissue_detection=False)
    # As `hubseg evaluate` scores: true objects smaller than the detection's minimum area are not counted
    # (a sliver of a glomerulus cut by an image border is neither a hit nor a miss of a detector told to drop
    # objects that small), so validation, the CV figures and the CLI agree on the same data.
    min_true_pixels = max(MIN_OBJECT_PIXELS, int(round(float(options.min_area_um2) / image.pixel_size_um**2)))
    result = EvaluationResult(images=1)
    for x0, y0, w, h in _windows(image):
        rgb, label = image.read(x0, y0, w, h)
        valid = label != IGNORE_INDEX
        slide = ArraySlide(rgb, image.pixel_size_um)
        detection = detect(slide, model, options=options, should_cancel=should_cancel)
        objects = []
        for obj in detection.objects:
            cx, cy = obj.centroid
            ix, iy = int(np.clip(cx, 0, w - 1)), int(np.clip(cy, 0, h - 1))
            if valid[iy, ix]:  # objects centred outside reviewed regions are neither right nor wrong
                objects.append(obj)
        pred_labels = rasterize_labels([o.geometry for o in objects], (h, w))
        true_labels = metrics.label_instances((label == 1) & valid, min_pixels=min_true_pixels)
        matching = metrics.match_instances(pred_labels, true_labels)
        result.tp += matching.tp
        result.fp += matching.fp
        result.fn += matching.fn
        pred_fg = (pred_labels > 0) & valid
        true_fg = (label == 1) & valid
        result.intersection += int(np.logical_and(pred_fg, true_fg).sum())
        result.total += int(pred_fg.sum()) + int(true_fg.sum())
        matched_by_id = dict(zip(matching.pred_ids.tolist(), matching.pred_matched.tolist()))
        window = shapely.box(0, 0, w, h)  # the analysed area, as detection's region border
        for index, obj in enumerate(objects, start=1):
            if index in matched_by_id:  # an object fully overdrawn by later ones has no pixels left
                result.energies.append(float(obj.mean_energy))
                result.matched.append(bool(matched_by_id[index]))
                result.features.append(raw_features(obj, window, image.pixel_size_um))
    return result


def evaluate_images(model, images: list[TrainingImage], options=None, should_cancel=None) -> EvaluationResult:
    total = EvaluationResult()
    for image in images:
        total.add(evaluate_image(model, image, options, should_cancel))
    return total


def gate_from_result(result: EvaluationResult) -> dict[str, Any] | None:
    return energy_gate(result.energies, result.matched, n_true=result.tp + result.fn)


def standardized_gate(folds: list[EvaluationResult], references: list[dict[str, Any] | None],
                      reference: dict[str, Any] | None) -> dict[str, Any] | None:
    """The cross-validated gate in standardised energy, turned into a raw cut-off for one model.

    ``folds``: held-out results of the CV fold models; ``references``: each fold model's
    :func:`energy_reference`; ``reference``: that of the model the gate is for (the shipped one, trained on
    all tiles). The standardised cut-off ``z_cutoff`` maximises instance F1 over the pooled standardised
    held-out objects; the returned ``cutoff`` is ``reference.median + z_cutoff × reference.scale``.
    Distribution summaries (``true_energy`` / ``false_energy``) are in standardised units.
    """
    usable = [(f, r) for f, r in zip(folds, references) if r is not None and f.energies]
    if not usable or reference is None:
        return None
    pooled = EvaluationResult()
    for fold, ref in usable:
        pooled.add(EvaluationResult(tp=fold.tp, fp=fold.fp, fn=fold.fn, intersection=fold.intersection,
                                    total=fold.total, images=fold.images,
                                    energies=standardize_energies(fold.energies, ref).tolist(), matched=list(fold.matched)))
    gate = gate_from_result(pooled)
    per_fold = [gate_from_result(f) for f, _ in usable]
    energies = np.asarray(pooled.energies)
    matched = np.asarray(pooled.matched, dtype=bool)
    keep = energies >= gate["cutoff"]
    n_true = pooled.tp + pooled.fn
    tp_gated, fp_gated = int((matched & keep).sum()), int((~matched & keep).sum())
    aurocs = [g["auroc"] for g in per_fold if g and g["auroc"] is not None]
    z_cutoff = gate.pop("cutoff")
    return {
        "cutoff": cutoff_for_reference(z_cutoff, reference),
        "z_cutoff": round(float(z_cutoff), 6),
        "reference": reference,
        "auroc": round(float(np.mean(aurocs)), 4) if aurocs else None,
        "auroc_pooled": gate["auroc"],
        **{k: gate[k] for k in ("f1_all", "f1_gated", "objects", "true_objects", "true_energy", "false_energy")},
        "precision_gated": round(metrics.precision(tp_gated, fp_gated, n_true - tp_gated), 4),
        "recall_gated": round(metrics.recall(tp_gated, fp_gated, n_true - tp_gated), 4),
        "per_fold": [{"auroc": g["auroc"], "f1_all": g["f1_all"],
                      "cutoff": cutoff_for_reference(z_cutoff, r)} for (_, r), g in zip(usable, per_fold) if g],
        "method": "standardised cut-off maximising instance F1 (IoU > 0.5) over the pooled held-out objects of the "
        "CV fold models, each fold model's energies standardised by its own training-image reference; the raw "
        "cut-off is this model's reference median + z_cutoff × scale",
        "units": "cutoff: raw energy of this model; z_cutoff, true_energy, false_energy: standardised",
    }


def cross_validated_gate(folds: list[EvaluationResult]) -> dict[str, Any] | None:
    """One gate from k-fold CV where each fold has its own model.

    The cut-off is the one that maximises instance F1 over the pooled held-out objects of all fold models:
    the final model's energy scale is unknown, and one cut-off that works across several models of the same
    recipe transfers better than any single fold's (per-fold optima are reported too). ``auroc`` is the mean
    of the per-fold AUROCs (TP vs FP objects of the same model); ``auroc_pooled`` mixes models.
    """
    per_fold = [gate_from_result(f) for f in folds]
    usable = [(f, g) for f, g in zip(folds, per_fold) if g is not None]
    if not usable:
        return None
    pooled = EvaluationResult()
    for fold, _ in usable:
        pooled.add(fold)
    gate = gate_from_result(pooled)
    energies = np.asarray(pooled.energies, dtype=np.float64)
    matched = np.asarray(pooled.matched, dtype=bool)
    keep = energies >= gate["cutoff"]
    n_true = pooled.tp + pooled.fn
    tp_gated, fp_gated = int((matched & keep).sum()), int((~matched & keep).sum())
    aurocs = [g["auroc"] for _, g in usable if g["auroc"] is not None]
    gate.update({
        "auroc": round(float(np.mean(aurocs)), 4) if aurocs else None,
        "auroc_pooled": gate["auroc"],
        "precision_gated": round(metrics.precision(tp_gated, fp_gated, n_true - tp_gated), 4),
        "recall_gated": round(metrics.recall(tp_gated, fp_gated, n_true - tp_gated), 4),
        "per_fold": [{k: g[k] for k in ("cutoff", "auroc", "f1_all", "f1_gated")} for _, g in usable],
        "method": "cut-off maximising instance F1 (IoU > 0.5) over the pooled held-out objects of the CV fold models",
    })
    return gate
