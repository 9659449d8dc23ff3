"""Energy-gated self-training: adapt a model to a lab's own unlabelled slides.

Each round: the teacher (the active or given model) detects on the unlabelled images
(:mod:`hubseg.training.pseudolabels` turns that into targets that never call a miss background); a student
initialised from the teacher trains on them with the trainer's sampling and strong augmentation
(:func:`hubseg.training.trainer.train`), mixed with any real label sets; the student is registered as a NEW
version and becomes the next round's teacher. The student's energy gate keeps the teacher's *standardised*
cut-off: both models' references (median and IQR of their confident objects' energy) are measured on the same
pseudo-labelled images, and the teacher's ``z = (cutoff − median) / IQR`` is mapped through the student's.
With real label sets large enough for a validation split, the trainer calibrates the gate on them instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from hubseg.errors import Cancelled, InvalidInputError
from hubseg.gating import cutoff_for_reference, energy_reference
from hubseg.training.evaluate import EvaluationResult, evaluate_images
from hubseg.training.pseudolabels import PseudoLabelRules, PseudoLabelSource, image_identity, pseudo_label_slide, summarize
from hubseg.training.sources import IMAGE_SUFFIXES
from hubseg.training.trainer import TrainConfig, load_sources, train

# Per round, the student trains for about this many iterations (batch 8, 192 px): ≈ 8 min at the 1.7 it/s
# measured for the shipped encoder on 2 CPU cores, which with the teacher pass keeps one whole-slide biopsy
# under 20 min (docs/models.md, "Self-training").
DEFAULT_ITERATIONS = 800
MAX_EPOCHS = 200
SLIDE_SUFFIXES = IMAGE_SUFFIXES + (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu")


@dataclass
class SelfTrainConfig:
    """What decides a self-training run besides the trainer's own :class:`TrainConfig` fields."""

    rounds: int = 1
    rules: PseudoLabelRules = field(default_factory=PseudoLabelRules)
    pixel_size_um: float | None = None  # level-0 µm/px of images whose files carry no calibration
    iterations: int = DEFAULT_ITERATIONS  # per round, when train.epochs is left to be derived
    epochs: int | None = None  # fixed epochs per round instead of the iteration budget
    detection_options: Any = None  # hubseg.pipeline.DetectionOptions of the teacher pass (default: product defaults)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-4, random_tiles=1.0))

    def validate(self) -> None:
        if not 1 <= int(self.rounds) <= 10:
            raise InvalidInputError(f"rounds must be between 1 and 10, got {self.rounds}")
        if int(self.iterations) < 1:
            raise InvalidInputError(f"iterations must be >= 1, got {self.iterations}")
        if self.epochs is not None and int(self.epochs) < 1:
            raise InvalidInputError(f"epochs must be >= 1, got {self.epochs}")


def expand_images(specs: list[str]) -> list[Path]:
    """Image paths; a folder stands for the images directly inside it (sorted)."""
    out: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SLIDE_SUFFIXES))
            if not found:
                raise InvalidInputError(f"no images in folder {path} (supported endings: {', '.join(SLIDE_SUFFIXES)})")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise InvalidInputError(f"unlabelled image not found: {spec} (give image files or folders of images)")
    if not out:
        raise InvalidInputError("no unlabelled images given")
    return out


def unreviewed_images(store) -> list[tuple[Path, float | None]]:
    """(file, level-0 µm/px) of a project store's images nobody has reviewed yet: no reviewed hubseg object, no
    reviewed region, no glomerulus drawn by the user; images whose file this machine cannot read are left out."""
    from urllib.parse import unquote, urlparse

    from hubseg.project.review import status_counts

    out = []
    for image in store.images():
        counts = status_counts(store.read_objects(image))
        if counts["reviewed"] or counts["regions"] or counts["user_glomeruli"]:
            continue
        parsed = urlparse(image.uri)
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else None
        if path is not None and path.is_file():
            out.append((path, image.pixel_size_um))
    return out


def unreviewed_project_images(project_path: str) -> list[tuple[Path, float | None]]:
    """:func:`unreviewed_images` of a QuPath project (``.qpproj``, through paquo)."""
    from hubseg.project.qupath_project import open_project

    store = open_project(project_path)
    try:
        return unreviewed_images(store)
    finally:
        store.close()


def epochs_for_budget(objects: int, random_tiles: float, batch_size: int, iterations: int) -> int:
    """Epochs so one round runs about ``iterations`` steps with the trainer's per-epoch sampling."""
    samples = objects + math.ceil(random_tiles * objects)
    steps = max(1, math.ceil(samples / batch_size))
    return int(min(MAX_EPOCHS, max(1, round(iterations / steps))))


def transferred_gate(teacher_card, teacher_reference: dict | None, student_reference: dict | None) -> dict | None:
    """The teacher's standardised cut-off mapped through the student's own energy reference."""
    gate = teacher_card.energy_gate if isinstance(teacher_card.energy_gate, dict) else None
    if gate is None or gate.get("cutoff") is None or teacher_reference is None or student_reference is None:
        return None
    z = (float(gate["cutoff"]) - float(teacher_reference["median"])) / float(teacher_reference["scale"])
    return {
        "cutoff": cutoff_for_reference(z, student_reference),
        "z_cutoff": round(z, 6),
        "reference": student_reference,
        "teacher": teacher_card.name,
        "teacher_cutoff": float(gate["cutoff"]),
        "teacher_reference": teacher_reference,
        "method": "self-training without held-out labels: the teacher's cut-off standardised by the teacher's "
        "reference and mapped through the student's, both measured on the same pseudo-labelled images "
        "(confident pseudo-positives, IoU > 0.5)",
        "units": "cutoff: raw energy of this model; z_cutoff: standardised",
        "source": "self-training",
    }


class _LoadedSource:
    """Already-loaded training images with their provenance (real label sets, loaded once for all rounds)."""

    def __init__(self, images, described):
        self.images, self.described = images, described

    def load(self, model_pixel_size_um):
        return list(self.images)

    def describe(self):
        return {"kind": "label-sets", "sources": self.described, "images": len(self.images)}


def _open(path: Path, pixel_size_um: float | None):
    from hubseg.slide import open_slide

    try:
        return open_slide(path, pixel_size_um=pixel_size_um)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path.name}: {error}") from None


def self_train(
    images: list[str | Path | tuple[Path, float | None]],
    registry,
    config: SelfTrainConfig | None = None,
    base_model: str | None = None,
    label_sources=(),
    name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> list:
    """Run ``config.rounds`` rounds of self-training; returns the registered cards (the last is the result).

    ``images``: unlabelled image paths (or ``(path, level-0 µm/px)``); ``label_sources``: real training data
    mixed in every round; ``name``: the final model's name (default ``<family>-v<N>``).
    ``progress(done, total, message)``: messages start with ``round R/N teacher:``, ``round R/N pseudo-labels:``
    or ``round R/N training:`` (per epoch); ``should_cancel()`` is checked in every phase.
    """
    config = config or SelfTrainConfig()
    config.validate()
    entries = [(Path(i[0]), i[1]) if isinstance(i, tuple) else (Path(i), None) for i in images]
    if not entries:
        raise InvalidInputError("no unlabelled images given")
    for path, _ in entries:
        if not path.is_file():
            raise InvalidInputError(f"unlabelled image not found: {path}")
    identities = [image_identity(path) for path, _ in entries]
    teacher_name = base_model or registry.active_name()
    device = config.train.device
    label_images, label_described = ([], [])
    first_card = registry.card(teacher_name)
    if label_sources:
        label_images, label_described = load_sources(list(label_sources), first_card.pixel_size_um)
    cards = []

    def report(done, total, message):
        if progress is not None:
            progress(done, total, message)

    def check_cancel():
        if should_cancel is not None and should_cancel():
            raise Cancelled("self-training was cancelled; no model was registered in this round")

    for round_index in range(1, config.rounds + 1):
        tag = f"round {round_index}/{config.rounds}"
        teacher = registry.load(teacher_name, device=device)
        rules = config.rules.resolve(teacher.card)
        pseudo, slides = [], []
        try:
            for index, (path, pixel_size) in enumerate(entries, start=1):
                check_cancel()
                slide = _open(path, pixel_size or config.pixel_size_um)
                slides.append(slide)
                prefix = f"{tag} teacher: image {index}/{len(entries)} {path.name}"
                report(0, 1, prefix)

                def tile_progress(done, total, message, prefix=prefix):
                    report(done, total, f"{prefix}: {message}")

                pseudo.append(pseudo_label_slide(slide, teacher, rules, name=f"unlabelled:{path.stem}#{index}",
                                                 source=str(path), options=config.detection_options,
                                                 progress=tile_progress, should_cancel=should_cancel))
            totals = summarize(pseudo)
            report(len(entries), len(entries),
                   f"{tag} pseudo-labels: {totals['pseudo_positive_objects']} confident, {totals['uncertain_objects']} "
                   f"uncertain objects; {100 * (totals['ignored_tissue_fraction'] or 0):.0f}% of tissue ignored")
            check_cancel()
            objects = totals["pseudo_positive_objects"] + sum(len(i.positives) + len(i.negatives) for i in label_images)
            if objects == 0:
                raise InvalidInputError(
                    f"the teacher {teacher.card.name} found no confident glomeruli on the {len(entries)} image(s) and no "
                    "label sets were given: nothing to learn from (check --pixel-size, or add --labels)"
                )
            teacher_reference = energy_reference(EvaluationResult(
                energies=[e for p in pseudo for e in p.confident_energies],
                matched=[True] * totals["pseudo_positive_objects"], images=len(pseudo)))
            train_config = replace(config.train, base_model=teacher.card.name,
                                   name=name if round_index == config.rounds else None)
            train_config.epochs = config.epochs or epochs_for_budget(
                objects, train_config.random_tiles, train_config.batch_size, config.iterations)
            train_config.val_images = _validation_names(label_images, train_config)
            sources = [PseudoLabelSource(pseudo, rules, teacher.card.name, identities, round_index)]
            if label_images:
                sources.append(_LoadedSource(label_images, label_described))
            pseudo_images = [p.image for p in pseudo]
            record = {"round": round_index, "rounds": config.rounds, "teacher": teacher.card.name, "rules": rules,
                      **totals, "images": [dict(i) for i in identities], "label_sets": len(label_described),
                      "teacher_reference": teacher_reference}

            def finalize(card, student, train_images, val_images, record=record, teacher_card=teacher.card,
                         teacher_reference=teacher_reference, pseudo_images=pseudo_images, tag=tag):
                check_cancel()
                report(0, 1, f"{tag} calibrating: student on its pseudo-labelled images")
                own = evaluate_images(student, pseudo_images, should_cancel=should_cancel)
                student_reference = energy_reference(own)
                transferred = transferred_gate(teacher_card, teacher_reference, student_reference)
                if not val_images and transferred is not None:
                    # no held-out real labels: the teacher's standardised cut-off through both models' references on
                    # the same pseudo-labelled images (instead of a gate carried over from the base's own images)
                    card.energy_gate = transferred
                elif card.energy_gate is None and isinstance(teacher_card.energy_gate, dict):
                    # the student found none of the confident pseudo-positives again, so it has no reference of its
                    # own: keep the teacher's raw gate (the student starts from the teacher's weights) and say so
                    card.energy_gate = {**teacher_card.energy_gate, "source": "carried from teacher (raw)",
                                        "teacher": teacher_card.name,
                                        "method": "the student's energy reference could not be measured (it detected "
                                        "none of the teacher's confident objects), so the teacher's gate is kept unchanged"}
                card.provenance["self_training"] = {**record, "student_reference": student_reference,
                                                    "agreement_with_pseudo_labels": own.summary()}

            def epoch_progress(done, total, message, tag=tag):
                report(done, total, f"{tag} training: {message}")

            card = train(train_config, sources, registry, progress=epoch_progress, should_cancel=should_cancel,
                         finalize=finalize)
        finally:
            for slide in slides:
                slide.close()
        cards.append(card)
        teacher_name = card.name
    return cards


def _validation_names(label_images, train_config: TrainConfig) -> list[str]:
    """Validation only ever on real labels: a share of the label-set images when there are at least two."""
    if len(label_images) < 2 or train_config.val_fraction <= 0:
        return []
    import numpy as np

    order = np.random.default_rng(train_config.seed).permutation(len(label_images))
    count = max(1, int(round(len(label_images) * train_config.val_fraction)))
    return [label_images[i].name for i in order[:count]]
