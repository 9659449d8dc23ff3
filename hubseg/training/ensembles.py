"""Fine-tuning an ensemble: every member is fine-tuned on the same label sets, then a new ensemble version lists them.

Each member goes through the ordinary fine-tune (:func:`hubseg.training.trainer.train`, passed in as ``train_one``
so this module does not import the trainer) with the same configuration, sources and seed, hence the same
held-out split; each registers as a new version of its own family with its own calibration. The new ensemble
(``<ensemble family>-v<N+1>``) lists them by name and sha256; its energy gate is calibrated on the ensemble's
own detections on the held-out images (cut-off maximising instance F1), as a single fine-tune's is when its
held-out regions allow, else it has none and detection reports no gate.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from hubseg.models.card import ModelCard
from hubseg.models.ensemble import EnsembleModel, ensemble_card, is_ensemble, resolve_members
from hubseg.training.evaluate import evaluate_images, gate_from_result

ProgressFn = Callable[[int, int, str], None]


def is_ensemble_base(config, registry) -> bool:
    """Whether ``config.base_model`` names an ensemble (then :func:`fine_tune_ensemble` handles the run)."""
    return bool(config.base_model) and is_ensemble(registry.card(config.base_model))


def _member_progress(progress: ProgressFn | None, index: int, count: int, name: str) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda done, total, message: progress(done, total, f"member {index}/{count} ({name}): {message}")


def fine_tune_ensemble(config, sources, registry, train_one: Callable[..., ModelCard], val_images: list,
                       progress: ProgressFn | None = None, should_cancel=None, epoch_callback=None) -> ModelCard:
    """Fine-tune every member of the ensemble ``config.base_model``; register and return the new ensemble's card.

    ``val_images``: the held-out images of the shared split (the ensemble's gate is calibrated on them).
    Members registered before a cancel stay registered (they are complete models); no ensemble is registered.
    """
    base = registry.card(config.base_model)
    folders = resolve_members(base, registry.folders())
    members: list[ModelCard] = []
    for index, folder in enumerate(folders, start=1):
        member_config = dataclasses.replace(config, base_model=str(folder.name), name=None, family=None)
        members.append(train_one(member_config, sources, registry,
                                 progress=_member_progress(progress, index, len(folders), folder.name),
                                 should_cancel=should_cancel, epoch_callback=epoch_callback))
    name = config.name or registry.next_version_name(base.family)
    card = ensemble_card(
        name, members, family=base.family, version=int(name.rpartition("-v")[2]) if name.rpartition("-v")[2].isdigit() else 1,
        pixel_size_um=base.pixel_size_um, tile_size=base.tile_size, threshold=base.threshold,
        class_name=base.class_name, class_color=list(base.class_color),
        provenance={"kind": "ensemble fine-tune", "base_model": base.name, "base_weights_sha256": base.weights_sha256,
                    "members": [m.name for m in members], "config": dataclasses.asdict(config)},
    )
    card.energy_gate, card.metrics = _held_out_gate(card, members, registry, val_images, config, should_cancel)
    return registry.register_ensemble(card)


def _held_out_gate(card: ModelCard, members: list[ModelCard], registry, val_images, config,
                   should_cancel) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The ensemble's energy gate and validation figures on the members' shared held-out images."""
    if not val_images:
        return None, {"validation": None, "calibration": {
            "method": None, "message": "calibration: NONE — no held-out images, so the ensemble has no energy gate "
            "(its members carry their own calibration)"}}
    model = EnsembleModel(card, [registry.load(m.name, device=config.device) for m in members])
    result = evaluate_images(model, val_images, should_cancel=should_cancel)
    gate = gate_from_result(result)
    validation = {**result.summary(), "image_names": [i.name for i in val_images]}
    if gate is None:
        return None, {"validation": validation, "calibration": {
            "method": None, "message": "calibration: NONE — the ensemble found no objects on the held-out images"}}
    gate["source"] = f"held-out images of the ensemble fine-tune ({len(val_images)})"
    return gate, {"validation": validation, "calibration": {
        "method": "held-out regions", "message": f"calibration: ensemble energy gate {gate['cutoff']:g} from its "
        f"detections on {len(val_images)} held-out image(s) ({gate['objects']} objects, AUROC {gate['auroc']})"}}


__all__ = ["fine_tune_ensemble", "is_ensemble_base"]
