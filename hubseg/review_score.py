"""The review score: probability that a detected object is a true glomerulus.

Energy alone ranks objects by how sure the network is; the false objects a pathologist meets are mostly small
fragments of glomeruli, PAS-positive tubules and objects cut by the region border, which area, shape and
mean probability expose as well. Per object seven features are computed (:data:`FEATURES`):

- ``energy_z``: mean energy standardised by the model's own energy reference (median / IQR of its true objects
  on its training images, :func:`hubseg.gating.energy_reference`), so the score carries across
  model versions whose energies sit on different scales;
- ``mean_probability``; ``log_area_um2``; ``solidity`` (area / convex hull area); ``circularity``
  (4πA / P²); ``border_distance_um``: distance to the analysed region's border, capped at
  :data:`BORDER_CAP_UM`. The cap is small on purpose: the feature is there to expose objects *cut* by the
  border, and calibration objects come from tiles a few hundred µm wide, so a larger cap would let a fit on
  tiles extrapolate to the interior of whole slides (where nearly every object is far from any border). A card
  keeps the cap its model was fitted with (``standardisation.border_cap_um``) and scoring uses that one;
- ``agreement``: an ensemble's member agreement (:mod:`hubseg.agreement`; 1.0 for a single model), a feature
  only for review models fitted on an ensemble's detections.

A logistic regression (numpy, Newton iterations, L2 on standardised features) maps them to a calibrated
probability. The card's ``review_model`` stores the fit, its out-of-fold AUROC beside that of energy alone on
the same objects, and the gate's cut-off on the score (chosen on out-of-fold scores to maximise instance F1).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from hubseg import metrics
from hubseg.gating import energy_gate  # the F1-maximising cut-off search, reused on scores

FEATURES = ("energy_z", "mean_probability", "log_area_um2", "solidity", "circularity", "border_distance_um",
            "agreement")
# What a review model uses unless told otherwise. Calibration sets are small (a fine-tune's held-out regions,
# the default model's AIDPATH crops with about ten distinct false objects), so two features beside energy, the
# two the adaptation issue found to separate true from false objects as well as energy: mean probability and
# area. The border distance is an artefact on crops (a glomerulus cut by the tile edge is the rule there) and
# solidity/circularity were collinear noise at this n; both stay available (docs/models.md has every fit tried).
DEFAULT_FEATURES = ("energy_z", "mean_probability", "log_area_um2")
# Review models stored without a "features" list were fitted on every feature that existed then: these six.
UNNAMED_FEATURES = FEATURES[:6]
RAW_KEYS = ("mean_energy", "mean_probability", "area_um2", "solidity", "circularity", "border_distance_um",
            "agreement")
BORDER_CAP_UM = 25.0  # µm; cards fitted before this cap record theirs (200) and keep it
DEFAULT_L2 = 1.0
MIN_PER_CLASS = 3  # fewer true or false calibration objects: no review model (the energy gate is used)


def raw_features(obj, border=None, level0_pixel_um: float = 1.0, border_cap_um: float = BORDER_CAP_UM) -> dict[str, float]:
    """An object's raw review features (energy not yet standardised).

    ``border``: the analysed area (shapely geometry in level-0 px: the region box or the requested polygon);
    ``None`` counts as far from any border. ``border_cap_um``: where the border distance is capped.
    """
    geometry = obj.geometry
    area = float(geometry.area)
    hull = float(geometry.convex_hull.area)
    perimeter = float(geometry.length)
    if border is not None:
        distance = float(border.boundary.distance(geometry)) * float(level0_pixel_um)
    else:
        distance = border_cap_um
    return {
        "mean_energy": float(obj.mean_energy),
        "mean_probability": float(obj.mean_probability),
        "area_um2": float(obj.area_um2),
        "solidity": area / hull if hull > 0 else 1.0,
        "circularity": min(1.0, 4.0 * math.pi * area / perimeter**2) if perimeter > 0 else 0.0,
        "border_distance_um": min(float(border_cap_um), distance),
        "agreement": _agreement(obj),
    }


def _agreement(obj) -> float:
    """An ensemble object's member agreement; a single model (or an object too large to measure) agrees with
    itself: 1.0. Only review models fitted on ensemble detections should list the feature."""
    value = getattr(obj, "agreement", None)
    return 1.0 if value is None else float(value)


def feature_matrix(rows: Sequence[dict[str, float]], energy_reference: dict[str, Any],
                   features: Sequence[str] = FEATURES) -> np.ndarray:
    """Raw feature dicts → the ``len(rows) × len(features)`` matrix the model works on (columns in the order of
    ``features``, a subset of :data:`FEATURES`)."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown review features {unknown}; valid: {', '.join(FEATURES)}")
    median, scale = float(energy_reference["median"]), float(energy_reference["scale"])
    columns = [FEATURES.index(f) for f in features]
    out = np.empty((len(rows), len(FEATURES)), np.float64)
    for i, row in enumerate(rows):
        out[i] = (
            (row["mean_energy"] - median) / scale,
            row["mean_probability"],
            math.log(max(row["area_um2"], 1.0)),
            row["solidity"],
            row["circularity"],
            row["border_distance_um"],
            row.get("agreement", 1.0),
        )
    return out[:, columns]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = DEFAULT_L2, iterations: int = 50) -> dict[str, Any]:
    """L2-penalised logistic regression on standardised ``x`` (Newton–Raphson; the intercept is not penalised)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-9] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    y = np.asarray(y, np.float64)
    w = np.zeros(z.shape[1])
    w[0] = math.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3))
    penalty = np.full(z.shape[1], float(l2))
    penalty[0] = 0.0
    for _ in range(iterations):
        p = _sigmoid(z @ w)
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return {"mean": mean.tolist(), "std": std.tolist(), "intercept": float(w[0]), "coefficients": w[1:].tolist()}


def predict(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Probabilities of a fitted model (``fit_logistic`` output or the card's ``review_model``)."""
    standardisation = model.get("standardisation", model)
    mean = np.asarray(standardisation["mean"], np.float64)
    std = np.asarray(standardisation["std"], np.float64)
    z = (np.asarray(x, np.float64) - mean) / std
    return _sigmoid(float(model["intercept"]) + z @ np.asarray(model["coefficients"], np.float64))


def out_of_fold_scores(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, l2: float = DEFAULT_L2,
                       groups: Sequence | None = None) -> np.ndarray:
    """Each object's score from a model fitted without it: stratified k-fold, or with ``groups`` (e.g. the tile
    of each object, when one object appears under several input conditions) whole groups per fold."""
    y = np.asarray(y, bool)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), int)
    if groups is not None:
        keys = np.asarray([str(g) for g in groups])
        unique = np.unique(keys)
        rng.shuffle(unique)
        fold_of = np.asarray([{g: i % folds for i, g in enumerate(unique)}[k] for k in keys])
    else:
        for cls in (True, False):
            index = np.flatnonzero(y == cls)
            rng.shuffle(index)
            fold_of[index] = np.arange(len(index)) % folds
    scores = np.empty(len(y))
    for k in range(folds):
        held = fold_of == k
        if not held.any():
            continue
        train = ~held
        if y[train].all() or not y[train].any():
            scores[held] = y[train].mean()
            continue
        scores[held] = predict(fit_logistic(x[train], y[train], l2), x[held])
    return scores


def review_scores(review_model: dict[str, Any], rows: Sequence[dict[str, float]]) -> np.ndarray:
    """Scores of a card's ``review_model`` for raw feature rows (:func:`raw_features`)."""
    x = feature_matrix(rows, review_model["standardisation"]["energy_reference"], review_model.get("features", UNNAMED_FEATURES))
    return predict(review_model, x)


def fit_review_model(rows: Sequence[dict[str, float]], matched: Sequence[bool], energy_reference: dict[str, Any] | None,
                     n_true: int | None = None, source: str = "", seed: int = 0, l2: float = DEFAULT_L2,
                     groups: Sequence | None = None, features: Sequence[str] = DEFAULT_FEATURES) -> dict[str, Any] | None:
    """The card's ``review_model`` fitted on calibration objects, or ``None`` when there are too few.

    ``rows``: :func:`raw_features` of each calibration object; ``matched``: whether it matched a true glomerulus;
    ``n_true``: number of true glomeruli (for F1 of the gate; default: the matched count); ``source``: how the
    calibration objects were obtained (recorded as ``calibration_source``); ``groups``: folds keep groups whole;
    ``features``: the subset of :data:`FEATURES` the model uses (``energy_z`` first: energy's AUROC is its column;
    default :data:`DEFAULT_FEATURES`).
    """
    if not features or features[0] != "energy_z":
        raise ValueError(f"review features must start with energy_z; got {list(features)}")
    y = np.asarray(matched, bool)
    if energy_reference is None or y.sum() < MIN_PER_CLASS or (~y).sum() < MIN_PER_CLASS:
        return None
    x = feature_matrix(rows, energy_reference, features)
    folds = int(min(5, y.sum(), (~y).sum()))
    if groups is not None:
        folds = int(min(5, len(set(map(str, groups)))))
    oof = out_of_fold_scores(x, y, folds=folds, seed=seed, l2=l2, groups=groups)
    gate = energy_gate(oof, y, n_true=n_true)
    fit = fit_logistic(x, y, l2)
    keep = oof >= gate["cutoff"]
    n_true = int(y.sum()) if n_true is None else int(n_true)
    tp, fp = int((y & keep).sum()), int((~y & keep).sum())
    energy_auroc = metrics.auroc(x[y, 0], x[~y, 0])
    return {
        "features": list(features),
        "standardisation": {"energy_reference": dict(energy_reference), "mean": fit["mean"], "std": fit["std"],
                            "border_cap_um": BORDER_CAP_UM},
        "coefficients": [round(c, 6) for c in fit["coefficients"]],
        "intercept": round(fit["intercept"], 6),
        "l2": float(l2),
        "n": int(len(y)),
        "n_true": int(y.sum()),
        "n_false": int((~y).sum()),
        "auroc_oof": gate["auroc"],
        "auroc_energy": None if energy_auroc is None else round(float(energy_auroc), 4),
        "cutoff": gate["cutoff"],
        "f1_all": gate["f1_all"],
        "f1_gated": gate["f1_gated"],
        "precision_gated": round(metrics.precision(tp, fp, n_true - tp), 4),
        "recall_gated": round(metrics.recall(tp, fp, n_true - tp), 4),
        "calibration_source": source,
        "method": f"logistic regression (L2 {l2} on standardised features), {folds}-fold out-of-fold scores for AUROC "
        "and the F1-maximising cut-off; AUROCs: true vs false objects",
    }


def score_objects(objects, review_model: dict[str, Any], border=None, level0_pixel_um: float = 1.0) -> None:
    """Set ``review_score`` on each object from the card's ``review_model``."""
    if not objects:
        return
    cap = float(review_model["standardisation"].get("border_cap_um", 200.0))  # the cap this model was fitted with
    rows = [raw_features(o, border, level0_pixel_um, cap) for o in objects]
    for obj, score in zip(objects, review_scores(review_model, rows)):
        obj.review_score = float(score)


__all__ = ["FEATURES", "DEFAULT_FEATURES", "BORDER_CAP_UM", "raw_features", "feature_matrix", "fit_logistic", "predict",
           "out_of_fold_scores", "review_scores", "fit_review_model", "score_objects"]
