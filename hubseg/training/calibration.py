"""Calibration of a fine-tune's gate and review score on the label sets' own reviewed regions.

Every training run ends with a calibrated gate, never a silent ``null``:

1. **held-out regions** — :func:`split_regions` holds out whole reviewed regions (a label set's regions are
   split individually, so a single label set with several regions still gets some; image folders hold out
   whole images). The model is trained without them; at the end the best checkpoint's detections on them
   give the energy gate (F1-maximising cut-off) and, with enough true and false objects, the review model
   (:mod:`hubseg.review_score`).
2. **carried from base** — nothing held out (``val_fraction 0``, or a single region): the base model's
   standardised cut-off ``z`` is carried over through the new model's *own* energy reference (median / IQR of
   its true objects on its training regions): ``cutoff = median + z·scale``. Its review model is carried the
   same way (its energy feature is standardised by the new reference).
3. **none** — a new model from scratch with nothing held out: no gate, and the card and the progress say so.

The card records which happened (``energy_gate.source`` / ``review_model.calibration_source`` and
``metrics.calibration``), and :func:`calibration_message` is the one line the CLI prints and the server's
training job reports as its last progress message.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import shapely

from hubseg.review_score import fit_review_model
from hubseg.training.augment import IGNORE_INDEX
from hubseg.gating import energy_reference
from hubseg.training.evaluate import EvaluationResult, gate_from_result
from hubseg.training.sources import TrainingImage


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


def calibrate(held_out: EvaluationResult | None, reference: dict[str, Any] | None, base_card=None,
              held_out_regions: int = 0, seed: int = 0) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """The new model's ``(energy_gate, review_model, summary)``.

    ``held_out``: detections of the trained model on held-out regions (``None`` if nothing was held out);
    ``reference``: the new model's energy reference on its training regions; ``base_card``: the fine-tune's
    base (for carrying its gate), ``None`` for a new model.
    """
    one_class = held_out is not None and held_out.energies and len(set(held_out.matched)) < 2
    can_carry = base_card is not None and reference is not None and _z_cutoff(getattr(base_card, "energy_gate", None)) is not None
    if held_out is not None and held_out.energies and not (one_class and can_carry):
        gate = gate_from_result(held_out)
        z = None
        if reference is not None:
            z = round((gate["cutoff"] - float(reference["median"])) / float(reference["scale"]), 6)
        source = f"held-out regions ({held_out_regions} region(s), {len(held_out.energies)} objects)"
        gate.update({"z_cutoff": z, "reference": reference, "source": source})
        review = fit_review_model(held_out.features, held_out.matched, reference, n_true=held_out.tp + held_out.fn,
                                  source=source, seed=seed)
        summary = {"method": "held-out regions", "n": len(held_out.energies), "regions": held_out_regions,
                   "true_objects": held_out.tp + held_out.fn, "auroc_energy": gate["auroc"], "cutoff": gate["cutoff"],
                   "review_model": None if review is None else {k: review[k] for k in ("auroc_oof", "cutoff", "n")}}
        if review is None:
            summary["review_model_note"] = (f"too few true/false held-out objects for a review model "
                                            f"({int(np.sum(held_out.matched))} true, "
                                            f"{int(len(held_out.matched) - np.sum(held_out.matched))} false); the energy gate decides")
        return gate, review, summary
    base_gate = getattr(base_card, "energy_gate", None)
    z = _z_cutoff(base_gate)
    if base_card is not None and z is not None and reference is not None:
        source = f"carried from base {base_card.name} (standardised cut-off z = {z:.3f} through this model's own energy reference)"
        gate = {"cutoff": round(float(reference["median"]) + z * float(reference["scale"]), 6), "z_cutoff": round(z, 6),
                "reference": reference, "auroc": None, "source": source,
                "base_gate": {k: base_gate.get(k) for k in ("cutoff", "auroc", "source")},
                "method": "no held-out regions to calibrate on: the base model's standardised cut-off, converted with this "
                "model's own reference (median/IQR of its true objects on its training regions)"}
        review = None
        base_review = getattr(base_card, "review_model", None)
        if isinstance(base_review, dict):
            review = copy.deepcopy(base_review)
            review["standardisation"]["energy_reference"] = reference
            review["calibration_source"] = f"carried from base {base_card.name} (was: {base_review.get('calibration_source')})"
        summary = {"method": "carried from base", "base_model": base_card.name, "z_cutoff": round(z, 6),
                   "cutoff": gate["cutoff"], "n": 0, "reference_objects": reference["objects"],
                   "review_model": None if review is None else "carried from base"}
        if one_class:  # held-out objects all true (or all false): an F1-optimal cut-off there says nothing
            kind = "true" if held_out.matched[0] else "false"
            summary["held_out_note"] = (f"the {len(held_out.energies)} held-out object(s) were all {kind}: no cut-off "
                                        "can be fitted on them")
            summary["n"] = len(held_out.energies)
            gate["source"] += f"; {summary['held_out_note']}"
        return gate, review, summary
    reason = ("nothing held out and the base model has no standardised gate" if base_card is not None
              else "nothing held out and no base model to carry a gate from")
    if reference is None:
        reason += "; no true object found on the training regions for an energy reference"
    return None, None, {"method": "none", "reason": reason, "n": 0}


def calibration_message(summary: dict[str, Any]) -> str:
    """One line saying how the gate was calibrated (printed by ``hubseg train``, the job's last progress)."""
    method = summary.get("method")
    if method == "held-out regions":
        text = (f"calibration: held-out regions ({summary['regions']} region(s), n={summary['n']} objects, "
                f"{summary['true_objects']} true glomeruli); energy gate cut-off {summary['cutoff']:.4g}, AUROC "
                f"{summary['auroc_energy'] if summary['auroc_energy'] is not None else 'n/a (one class only)'}")
        review = summary.get("review_model")
        if review:
            text += f"; review score AUROC {review['auroc_oof']} (out of fold), cut-off {review['cutoff']:.3f}"
        else:
            text += "; no review model (" + summary.get("review_model_note", "too few objects") + ")"
        return text
    if method == "carried from base":
        why = summary.get("held_out_note") or "NO held-out regions"
        return (f"calibration: {why}; gate carried from base {summary['base_model']} "
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


__all__ = ["split_regions", "region_view", "calibrate", "calibration_message", "reference_on", "calibrate_card"]
