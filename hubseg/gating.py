"""Gating: which detected objects are confident and which go to review as uncertain.

One small interface for both gates a model card can carry:

- :func:`choose_gate` picks the gate detection applies: the review score's when the card has a fitted
  ``review_model`` with a cut-off, else the energy gate, else none;
- :func:`apply_gate` marks objects uncertain below that gate's cut-off and orders them for review;
- :func:`energy_gate` finds the F1-maximising cut-off on held-out objects (used on mean energy for the
  energy gate and on out-of-fold scores for the review score);
- :func:`energy_reference`, :func:`standardize_energies`, :func:`cutoff_for_reference`: a model's own
  energy scale, so that a cut-off found on fold models carries over to the shipped one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hubseg import metrics
from hubseg.instances import rank_objects

ENERGY = "energy"
REVIEW_SCORE = "review score"


def _summary(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"count": 0}
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "min": round(float(values.min()), 4),
        "p05": round(float(q[0]), 4),
        "p25": round(float(q[1]), 4),
        "median": round(float(q[2]), 4),
        "p75": round(float(q[3]), 4),
        "p95": round(float(q[4]), 4),
        "max": round(float(values.max()), 4),
    }


def energy_gate(energies, matched, n_true: int | None = None, fn_unmatched: int = 0) -> dict[str, Any] | None:
    """The cut-off on mean object energy that maximises instance F1 on held-out objects.

    ``energies``/``matched``: one entry per predicted object; ``n_true`` = number of true objects
    (default: matched + ``fn_unmatched``). Objects at or above ``cutoff`` are kept as confident; the
    cut-off sits halfway between the last dropped and the first kept energy. Ties in F1 keep more objects.
    Returns ``{cutoff, auroc, f1_all, f1_gated, true_energy, false_energy}``, or ``None`` without objects.
    """
    energies = np.asarray(energies, dtype=np.float64)
    matched = np.asarray(matched, dtype=bool)
    if energies.size == 0:
        return None
    if n_true is None:
        n_true = int(matched.sum()) + int(fn_unmatched)
    order = np.argsort(energies)
    e_sorted, m_sorted = energies[order], matched[order]
    best_f1, best_k = -1.0, 0
    # drop the k lowest-energy objects, k = 0 .. n (only between distinct energies)
    for k in range(0, energies.size + 1):
        if 0 < k < energies.size and e_sorted[k] == e_sorted[k - 1]:
            continue
        tp = int(m_sorted[k:].sum())
        fp = int((~m_sorted[k:]).sum())
        fn = n_true - tp
        score = metrics.f1(tp, fp, fn)
        if score > best_f1 + 1e-12:
            best_f1, best_k = score, k
    if best_k == 0:
        cutoff = float(e_sorted[0])  # keep everything: the lowest object is exactly at the gate
    elif best_k == energies.size:
        cutoff = float(e_sorted[-1]) + 1e-6
    else:
        cutoff = float((e_sorted[best_k - 1] + e_sorted[best_k]) / 2)
    tp_all = int(matched.sum())
    auroc = metrics.auroc(energies[matched], energies[~matched])
    return {
        "cutoff": round(cutoff, 6),
        "auroc": None if auroc is None else round(float(auroc), 4),
        "f1_all": round(metrics.f1(tp_all, int((~matched).sum()), n_true - tp_all), 4),
        "f1_gated": round(best_f1, 4),
        "objects": int(energies.size),
        "true_objects": int(n_true),
        "true_energy": _summary(energies[matched]),
        "false_energy": _summary(energies[~matched]),
        "method": "cut-off maximising instance F1 (IoU > 0.5) on held-out objects",
    }


def energy_reference(result) -> dict[str, Any] | None:
    """A model's own energy scale: median and spread of its *true* objects' mean energy on its training images
    (``result``: a ``hubseg.training.evaluate.EvaluationResult``).

    Separately trained models of one recipe put their energies on very different scales (fold models of the
    default recipe differed by 4× in median), so a cut-off in raw energy does not carry over from the CV fold
    models to the shipped one. Each model is therefore measured on the images it was trained on — the one
    data set every model of a recipe has — and energies are compared as ``(energy - median) / scale``.
    ``scale`` is the interquartile range, floored at 5 % of |median| (and 1e-3) so near-constant energies
    cannot blow the standardised values up. With per-object features, ``area_um2`` {p10, median} of the same true
    objects is the model's reference glomerulus size (the touching split's minimum part). ``None`` without
    matched objects.
    """
    energies = np.asarray(result.energies, dtype=np.float64)[np.asarray(result.matched, dtype=bool)]
    if energies.size == 0:
        return None
    median = float(np.median(energies))
    q25, q75 = np.percentile(energies, [25, 75])
    scale = max(float(q75 - q25), 0.05 * abs(median), 1e-3)
    reference = {"median": round(median, 6), "scale": round(scale, 6), "objects": int(energies.size),
                 "images": int(result.images),
                 "method": "true objects (IoU > 0.5) on the model's own training images; scale = IQR"}
    if len(result.features) == len(result.matched):  # the true objects' areas: what a glomerulus is for this model
        areas = np.asarray([f["area_um2"] for f, m in zip(result.features, result.matched) if m], np.float64)
        p10, p50 = np.percentile(areas, [10, 50])
        reference["area_um2"] = {"p10": round(float(p10), 1), "median": round(float(p50), 1)}
    return reference


def standardize_energies(energies, reference: dict[str, Any]) -> np.ndarray:
    """Energies in units of a model's own reference (see :func:`energy_reference`)."""
    return (np.asarray(energies, dtype=np.float64) - float(reference["median"])) / float(reference["scale"])


def cutoff_for_reference(z_cutoff: float, reference: dict[str, Any]) -> float:
    """The raw energy cut-off of a standardised gate for one model."""
    return round(float(reference["median"]) + float(z_cutoff) * float(reference["scale"]), 6)


def choose_gate(card) -> dict[str, Any] | None:
    """The gate detection applies for ``card``: ``{"kind": "review score", "cutoff", auroc_oof, auroc_energy, n,
    calibration_source}`` when the card has a review model with a cut-off, else ``{"kind": "energy", **energy_gate}``
    when it has an energy gate with a cut-off, else ``None``."""
    review = card.review_model if isinstance(getattr(card, "review_model", None), dict) else None
    if review is not None and review.get("cutoff") is not None:
        return {"kind": REVIEW_SCORE, "cutoff": float(review["cutoff"]),
                **{k: review.get(k) for k in ("auroc_oof", "auroc_energy", "n", "calibration_source")}}
    if isinstance(card.energy_gate, dict) and card.energy_gate.get("cutoff") is not None:
        return {"kind": ENERGY, **card.energy_gate}
    return None


def apply_gate(objects: list, card, options) -> dict[str, Any] | None:
    """Classify objects by the card's gate; the uncertain ones get the uncertain class (never dropped).

    ``options`` (a ``DetectionOptions``): ``use_energy_gate`` (off: no gate), ``uncertain_class_name``,
    ``uncertain_color``. With a review-score gate the objects must already carry ``review_score``. Returns the
    gate used (see :func:`choose_gate`) or ``None``. Review order: uncertain first, then lowest review score
    (else lowest energy) first; ranks follow that order.
    """
    gate = choose_gate(card) if options.use_energy_gate else None
    energy_cutoff = float(gate["cutoff"]) if gate and gate["kind"] == ENERGY else None
    for obj in objects:
        obj.energy_gate = energy_cutoff
        if gate is None:
            obj.uncertain = False
        elif energy_cutoff is not None:
            obj.uncertain = obj.mean_energy < energy_cutoff
        else:
            obj.uncertain = obj.review_score < float(gate["cutoff"])
        if obj.uncertain:
            obj.class_name = options.uncertain_class_name
            obj.class_color = tuple(int(c) for c in options.uncertain_color)
        else:
            obj.class_name = card.class_name
            obj.class_color = tuple(int(c) for c in card.class_color)
    objects[:] = rank_objects(objects)
    objects.sort(key=lambda o: (not o.uncertain, o.rank))
    return gate


__all__ = ["ENERGY", "REVIEW_SCORE", "apply_gate", "choose_gate", "cutoff_for_reference", "energy_gate",
           "energy_reference", "standardize_energies"]
