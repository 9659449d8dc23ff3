"""Calibration of a fine-tune's gate and review score on the label sets' own reviewed regions.

Every training run ends with a calibrated gate, never a silent ``null``, and under one **evidence rule**: a
cut-off or review model fitted on fewer than :data:`MIN_EVIDENCE` true or false held-out objects never decides
alone.

1. **held-out regions, enough evidence** — :func:`split_regions` holds out whole reviewed regions (a label set's
   regions are split individually; image folders hold out whole images). The model is trained without them; the
   best checkpoint's detections on them give the energy gate (F1-maximising cut-off) and a refitted review model
   (:mod:`hubseg.review_score`). The refit replaces the base model's carried review model (or carried energy
   cut-off, when the base has no review model) only if its gate — model *and* cut-off fitted out of fold — has a
   strictly higher F1 on the same held-out objects (:func:`compare_review_models`).
2. **held-out regions, thin evidence** — fewer than :data:`MIN_EVIDENCE` true or false objects: the base model's
   review model and standardised cut-off are carried through the new model's energy reference, the energy
   cut-off shrunk towards the fitted one with weight ``min(n_true, n_false) / MIN_EVIDENCE``. A model from
   scratch has nothing to carry: its thin energy gate stands, and the summary says so.
3. **carried from base** — nothing held out (``val_fraction 0``, or a single region): the base model's
   standardised cut-off ``z`` through the new model's *own* energy reference (median / IQR of its true objects on
   its training regions): ``cutoff = median + z·scale``; its review model likewise.
4. **none** — a new model from scratch with nothing held out: no gate, and the card and the progress say so.

The card records which rule applied and on how many objects (``energy_gate.source``,
``review_model.calibration_source``, ``metrics.calibration`` with ``method``, ``rule``, ``n_true``, ``n_false``),
and :func:`calibration_message` is the one line the CLI prints and the server's training job (and so
``hubseg adapt --labels``, which trains through the same path) reports as its last progress message.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import shapely

from hubseg import metrics
from hubseg.review_score import feature_matrix, fit_logistic, fit_review_model, predict, review_scores
from hubseg.training.augment import IGNORE_INDEX
from hubseg.gating import cutoff_for_reference, energy_gate, energy_reference
from hubseg.training.evaluate import EvaluationResult, gate_from_result
from hubseg.training.sources import TrainingImage

# The evidence rule: a cut-off or review model fitted on fewer true or false held-out objects than this never
# decides alone. From a bootstrap of the F1-optimal cut-off (scripts/bench_gate_evidence.py, docs/models.md):
# at 10 per class the fitted cut-off costs < 0.01 F1 on average against the population's best cut-off, and
# fewer than 6 % of fits flag (almost) nothing; at 3 false it is 0.02 and up to 13 %.
MIN_EVIDENCE = 10


def _units(image: TrainingImage) -> list[int | None]:
    """Calibration units of one image: its reviewed regions, or the whole image (``None``)."""
    return list(range(len(image.regions))) if len(image.regions) > 1 else [None]


def region_view(image: TrainingImage, keep: list[int], suffix: str) -> TrainingImage:
    """The image with only the reviewed regions ``keep`` labelled (everything else ignored)."""
    inside = np.zeros(image.shape, bool)
    from hubseg.geometry import rasterize_geometry

    for index in keep:
        inside |= rasterize_geometry(image.regions[index], image.shape)
    union = shapely.union_all([image.regions[i] for i in keep])
    label = image.label.copy()
    label[~inside] = IGNORE_INDEX
    view = copy.copy(image)
    view.name = f"{image.name}{suffix}"
    view.label = label
    view.regions = [image.regions[i] for i in keep]
    view.positives = [p for p in image.positives if union.covers(shapely.Point(p))]
    view.negatives = [p for p in image.negatives if union.covers(shapely.Point(p))]
    return view


def split_regions(images: list[TrainingImage], val_fraction: float, seed: int) -> tuple[list[TrainingImage], list[TrainingImage]]:
    """Hold out ``val_fraction`` of the reviewed regions (at least one, never all) for validation + calibration.

    Units are label-set regions (an image with several) or whole images; held-out units are drawn at random
    (seeded) among those with at least one glomerulus while the training side keeps at least one glomerulus.
    Returns ``(train, held_out)``; ``held_out`` is empty when there are fewer than two units.
    """
    units = [(i, r) for i, image in enumerate(images) for r in _units(image)]
    if val_fraction <= 0 or len(units) < 2:
        return list(images), []

    def positives(unit) -> int:
        image = images[unit[0]]
        if unit[1] is None:
            return len(image.positives)
        region = image.regions[unit[1]]
        return sum(region.covers(shapely.Point(p)) for p in image.positives)

    counts = {u: positives(u) for u in units}
    total = sum(counts.values())
    n_val = max(1, int(round(len(units) * val_fraction)))
    order = np.random.default_rng(seed).permutation(len(units))
    held: list[tuple[int, int | None]] = []
    held_pos = 0
    for index in order:
        unit = units[index]
        if len(held) >= n_val:
            break
        if counts[unit] == 0 or total - held_pos - counts[unit] <= 0:
            continue
        held.append(unit)
        held_pos += counts[unit]
    if not held:
        return list(images), []
    train: list[TrainingImage] = []
    val: list[TrainingImage] = []
    for i, image in enumerate(images):
        held_here = [r for (j, r) in held if j == i]
        if not held_here:
            train.append(image)
        elif held_here == [None]:
            val.append(image)
        else:
            kept = [r for r in range(len(image.regions)) if r not in held_here]
            val.append(region_view(image, held_here, f"[regions {','.join(str(r + 1) for r in held_here)}]"))
            if kept:
                train.append(region_view(image, kept, f"[regions {','.join(str(r + 1) for r in kept)}]"))
    return train, val


def _z_cutoff(gate: dict[str, Any] | None) -> float | None:
    """A gate's cut-off in standardised energy (its own ``z_cutoff``, else from its reference)."""
    if not isinstance(gate, dict) or gate.get("cutoff") is None:
        return None
    if gate.get("z_cutoff") is not None:
        return float(gate["z_cutoff"])
    reference = gate.get("reference")
    if isinstance(reference, dict):
        return (float(gate["cutoff"]) - float(reference["median"])) / float(reference["scale"])
    return None


def _carried(base_card, reference: dict[str, Any] | None, raw: bool = True) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The base model's gate and review model carried through the new model's energy reference (``(None, None)``
    when the base has no standardised gate, or the new model no reference and ``raw`` is off; with ``raw`` on,
    a model without a reference keeps the base's unchanged)."""
    base_gate = getattr(base_card, "energy_gate", None)
    z = _z_cutoff(base_gate)
    if raw and base_card is not None and reference is None and isinstance(base_gate, dict) and base_gate.get("cutoff") is not None:
        return _carried_raw(base_card)
    if base_card is None or z is None or reference is None:
        return None, None
    gate = {"cutoff": cutoff_for_reference(z, reference), "z_cutoff": round(z, 6), "reference": reference,
            "auroc": None, "source": f"carried from base {base_card.name} (standardised cut-off z = {z:.3f} through "
            "this model's own energy reference)",
            "base_gate": {k: base_gate.get(k) for k in ("cutoff", "auroc", "source")},
            "method": "the base model's standardised cut-off, converted with this model's own reference (median/IQR "
            "of its true objects on its training regions)"}
    review = None
    base_review = getattr(base_card, "review_model", None)
    if isinstance(base_review, dict):
        review = copy.deepcopy(base_review)
        review["standardisation"]["energy_reference"] = reference
        review["calibration_source"] = f"carried from base {base_card.name} (was: {base_review.get('calibration_source')})"
    return gate, review


def _carried_raw(base_card) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The base's gate and review model unchanged: the new model found no true object on its training regions, so
    it has no energy reference to carry them through (it starts from the base's weights)."""
    why = "this model has no energy reference (no true object found on its training regions), so unchanged"
    gate = {**base_card.energy_gate, "source": f"carried from base {base_card.name} (raw: {why})",
            "base_gate": {k: base_card.energy_gate.get(k) for k in ("cutoff", "auroc", "source")}}
    review = None
    if isinstance(getattr(base_card, "review_model", None), dict):
        review = copy.deepcopy(base_card.review_model)
        review["calibration_source"] = f"carried from base {base_card.name} (raw: {why})"
    return gate, review


def out_of_fold_decisions(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Whether each object passes the gate of a review model *and cut-off* fitted without it (stratified k-fold):
    per fold the logistic fit and its F1-maximising cut-off come from the other folds only, so the decisions on the
    held fold are honest. A fold whose training side lacks a class keeps its objects."""
    y = np.asarray(y, bool)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), int)
    for cls in (True, False):
        index = np.flatnonzero(y == cls)
        rng.shuffle(index)
        fold_of[index] = np.arange(len(index)) % folds
    keep = np.ones(len(y), bool)
    for k in range(folds):
        held, train = fold_of == k, fold_of != k
        if not held.any() or y[train].all() or not y[train].any():
            continue
        fit = fit_logistic(x[train], y[train])
        keep[held] = predict(fit, x[held]) >= energy_gate(predict(fit, x[train]), y[train])["cutoff"]
    return keep


def _gate_f1(keep: np.ndarray, matched: np.ndarray, n_true: int) -> float:
    tp = int((keep & matched).sum())
    return round(metrics.f1(tp, int((keep & ~matched).sum()), n_true - tp), 4)


def compare_review_models(held_out: EvaluationResult, refit: dict[str, Any], carried_gate: dict[str, Any] | None,
                          carried_review: dict[str, Any] | None, seed: int = 0) -> dict[str, Any]:
    """F1 on the held-out objects of the refit review model (model and cut-off out of fold) and of the carried
    gate (the carried review model where the base has one, else the carried energy cut-off; fitted on none of
    them). ``refit_wins`` only when the refit is strictly better."""
    matched = np.asarray(held_out.matched, bool)
    n_true = held_out.tp + held_out.fn
    x = feature_matrix(held_out.features, refit["standardisation"]["energy_reference"], refit["features"])
    folds = int(min(5, matched.sum(), (~matched).sum()))
    refit_f1 = _gate_f1(out_of_fold_decisions(x, matched, folds, seed), matched, n_true)
    if carried_review is not None:
        carried_keep, kind = review_scores(carried_review, held_out.features) >= float(carried_review["cutoff"]), "review model"
    elif carried_gate is not None:
        carried_keep, kind = np.asarray(held_out.energies) >= float(carried_gate["cutoff"]), "energy cut-off"
    else:
        return {"refit_f1_oof": refit_f1, "carried": None, "refit_wins": True}
    carried_f1 = _gate_f1(carried_keep, matched, n_true)
    return {"refit_f1_oof": refit_f1, "carried": kind, "carried_f1": carried_f1, "refit_wins": refit_f1 > carried_f1}


def _evidence(held_out: EvaluationResult) -> tuple[int, int]:
    true_objects = int(np.sum(held_out.matched))
    return true_objects, len(held_out.matched) - true_objects


def calibrate(held_out: EvaluationResult | None, reference: dict[str, Any] | None, base_card=None,
              held_out_regions: int = 0, seed: int = 0) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """The new model's ``(energy_gate, review_model, summary)`` under the evidence rule (module docstring).

    ``held_out``: detections of the trained model on held-out regions (``None`` if nothing was held out);
    ``reference``: the new model's energy reference on its training regions; ``base_card``: the fine-tune's
    base (for carrying its gate), ``None`` for a new model.
    """
    # nothing held out and no reference: "none" (self-training then keeps its teacher's gate, labelled its own way)
    carried_gate, carried_review = _carried(base_card, reference, raw=held_out is not None and bool(held_out.energies))
    if held_out is None or not held_out.energies:
        if carried_gate is not None:
            summary = {"method": "carried from base", "rule": "carried", "base_model": base_card.name,
                       "z_cutoff": carried_gate["z_cutoff"], "cutoff": carried_gate["cutoff"], "n": 0,
                       "n_true": 0, "n_false": 0, "reference_objects": reference["objects"],
                       "review_model": None if carried_review is None else "carried from base"}
            return carried_gate, carried_review, summary
        reason = ("nothing held out and the base model has no standardised gate" if base_card is not None
                  else "nothing held out and no base model to carry a gate from")
        if reference is None:
            reason += "; no true object found on the training regions for an energy reference"
        return None, None, {"method": "none", "rule": "none", "reason": reason, "n": 0}
    n_true, n_false = _evidence(held_out)
    evidence = min(n_true, n_false)
    fitted = gate_from_result(held_out)
    z_fit = None if reference is None else (fitted["cutoff"] - float(reference["median"])) / float(reference["scale"])
    base = {"n": len(held_out.energies), "n_true": n_true, "n_false": n_false, "regions": held_out_regions,
            "true_objects": held_out.tp + held_out.fn, "auroc_energy": fitted["auroc"], "min_per_class": MIN_EVIDENCE}
    if evidence < MIN_EVIDENCE and carried_gate is not None:
        return _thin_carried(fitted, z_fit, carried_gate, carried_review, base_card, reference, base)
    source = f"held-out regions ({held_out_regions} region(s), {len(held_out.energies)} objects: {n_true} true, {n_false} false)"
    fitted.update({"z_cutoff": None if z_fit is None else round(z_fit, 6), "reference": reference, "source": source})
    summary = {"method": "held-out regions", **base, "cutoff": fitted["cutoff"]}
    if evidence < MIN_EVIDENCE:  # a model trained from scratch: nothing to carry, the thin energy gate is all there is
        summary.update(rule="thin evidence, nothing to carry", review_model=None,
                       review_model_note=f"fewer than {MIN_EVIDENCE} true or false held-out objects and no base model to "
                       "carry a review model from; the energy gate (fitted on thin evidence) decides")
        return fitted, None, summary
    refit = fit_review_model(held_out.features, held_out.matched, reference, n_true=held_out.tp + held_out.fn,
                             source=source, seed=seed)
    if refit is None:
        summary.update(rule="refit energy gate", review_model=None, review_model_note="no energy reference for a review model")
        return fitted, None, summary
    comparison = compare_review_models(held_out, refit, carried_gate, carried_review, seed)
    summary["comparison"] = comparison
    if comparison["refit_wins"]:
        refit["comparison"] = comparison
        summary.update(rule="refit review model", review_model={k: refit[k] for k in ("auroc_oof", "cutoff", "n")})
        return fitted, refit, summary
    summary.update(rule=f"carried {comparison['carried']} (the refit did not beat it out of fold)",
                   review_model=None if carried_review is None else "carried from base")
    if carried_review is not None:
        carried_review["comparison"] = comparison
    return fitted, carried_review, summary


def _thin_carried(fitted, z_fit, carried_gate, carried_review, base_card, reference, base) -> tuple:
    """Below the evidence threshold with a base to carry from: the base's review model decides, and the energy
    cut-off is the carried one shrunk towards the fitted one in proportion to the evidence."""
    gate = dict(carried_gate)
    weight = 0.0
    if reference is not None and z_fit is not None and carried_gate.get("z_cutoff") is not None:
        weight = min(base["n_true"], base["n_false"]) / MIN_EVIDENCE
        z = (1 - weight) * carried_gate["z_cutoff"] + weight * z_fit
        gate.update({"cutoff": cutoff_for_reference(z, reference), "z_cutoff": round(z, 6)})
    gate.update({"auroc": fitted["auroc"], "objects": base["n"], "fitted_cutoff": fitted["cutoff"],
                 "evidence_weight": round(weight, 3)})
    gate["source"] += (f"; thin held-out evidence ({base['n_true']} true, {base['n_false']} false objects, fewer than "
                       f"{MIN_EVIDENCE} of a class): cut-off shrunk towards the fitted one with weight {weight:.2f}")
    summary = {"method": "thin evidence: carried from base", **base, "rule": "carried (thin evidence)",
               "base_model": base_card.name, "z_cutoff": gate.get("z_cutoff"), "cutoff": gate["cutoff"],
               "fitted_cutoff": fitted["cutoff"], "evidence_weight": round(weight, 3),
               "reference_objects": None if reference is None else reference["objects"],
               "review_model": None if carried_review is None else "carried from base"}
    return gate, carried_review, summary


def calibration_message(summary: dict[str, Any]) -> str:
    """One line saying how the gate was calibrated and which evidence rule applied (printed by ``hubseg train``,
    the job's last progress message)."""
    method = summary.get("method")
    counts = (f"{summary.get('n', 0)} held-out objects: {summary.get('n_true', 0)} true, "
              f"{summary.get('n_false', 0)} false")
    if method == "held-out regions":
        text = (f"calibration: held-out regions ({summary['regions']} region(s), {counts}; rule: {summary['rule']}); "
                f"energy cut-off {summary['cutoff']:.4g}, AUROC "
                f"{summary['auroc_energy'] if summary['auroc_energy'] is not None else 'n/a (one class only)'}")
        review = summary.get("review_model")
        comparison = summary.get("comparison") or {}
        if isinstance(review, dict):
            text += f"; review score AUROC {review['auroc_oof']} (out of fold), cut-off {review['cutoff']:.3f}"
        elif review:
            text += "; review model carried from base"
        else:
            text += "; no review model (" + summary.get("review_model_note", "the energy gate decides") + ")"
        if comparison.get("carried"):
            text += (f"; out-of-fold F1 refit {comparison['refit_f1_oof']} vs carried {comparison['carried']} "
                     f"{comparison['carried_f1']}")
        return text
    if method == "thin evidence: carried from base":
        return (f"calibration: THIN EVIDENCE ({counts}, fewer than {summary['min_per_class']} of a class): gate and "
                f"review model carried from base {summary['base_model']}; energy cut-off {summary['cutoff']:.4g} "
                f"(carried, shrunk towards the fitted {summary['fitted_cutoff']:.4g} with weight "
                f"{summary['evidence_weight']:.2f})")
    if method == "carried from base":
        return (f"calibration: NO held-out regions; gate carried from base {summary['base_model']} "
                f"(standardised cut-off z={summary['z_cutoff']:.3f} -> cut-off {summary['cutoff']:.4g} through this "
                f"model's energy reference on {summary['reference_objects']} training objects); not re-calibrated")
    return f"calibration: NONE — no energy gate, nothing will be marked uncertain ({summary.get('reason')})"


def reference_on(model, images: list[TrainingImage], should_cancel=None) -> dict[str, Any] | None:
    """A model's energy reference measured on (its training) images."""
    from hubseg.training.evaluate import evaluate_images

    if not images:
        return None
    return energy_reference(evaluate_images(model, images, should_cancel=should_cancel))


def calibrate_card(card, module, result, train_images, val_images, config, registry, progress=None,
                   should_cancel=None) -> dict[str, Any]:
    """Give the trained ``card`` (a :class:`hubseg.training.trainer.FitResult`'s) its gate and review model; returns
    the summary.

    The kept weights' energy reference is measured on the training regions; the gate is fitted on the held-out
    regions' detections (``result.validation``), else carried from the base model. The last progress message
    (and so the server job's) says which happened.
    """
    from hubseg.models.devices import resolve_device
    from hubseg.models.loaded import LoadedModel

    module.load_state_dict(result.state_dict)
    device = resolve_device(config.device)
    if progress is not None:
        progress(config.epochs, config.epochs, "calibrating the gate: measuring the energy reference on the training regions")
    reference = reference_on(LoadedModel(card, module.to(device).eval(), device), train_images, should_cancel)
    base_card = None
    if config.base_model is not None:
        base_card = registry.card(config.base_model)
        gate = base_card.energy_gate
        needs_reference = (result.validation is None and isinstance(gate, dict) and gate.get("cutoff") is not None
                           and gate.get("z_cutoff") is None and not isinstance(gate.get("reference"), dict))
        if needs_reference:  # an older card without a reference: measure the base model's on the same regions
            base_card.energy_gate = {**gate, "reference": reference_on(registry.load(config.base_model, device=device),
                                                                       train_images, should_cancel)}
            if base_card.energy_gate["reference"] is None:
                base_card.energy_gate = gate
    held_regions = sum(max(1, len(i.regions)) for i in val_images)
    card.energy_gate, card.review_model, summary = calibrate(result.validation, reference, base_card, held_regions,
                                                             seed=config.seed)
    summary["message"] = calibration_message(summary)
    if progress is not None:
        progress(config.epochs, config.epochs, summary["message"])
    return summary


__all__ = ["MIN_EVIDENCE", "split_regions", "region_view", "calibrate", "calibration_message", "compare_review_models",
           "out_of_fold_decisions", "reference_on", "calibrate_card"]
