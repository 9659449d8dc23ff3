"""Adapting must never silently make things worse: the student against its teacher on held-back images.

Every ``HOLD_BACK_EVERY``-th pseudo-labelled image (teacher tile) of a self-training run is held back: the teacher
labels it, the student never trains on it. After training, teacher and student both detect on the held-back images
and are scored against the teacher's pseudo-labels (:func:`hubseg.training.evaluate.evaluate_images`: objects
matched at IoU > 0.5, objects centred on ignored pixels not counted):

- ``recall`` — the share of the teacher's *confident* objects found again;
- ``dice`` — pixel agreement with the pseudo-labels (glomerulus vs pseudo-background, ignored pixels left out);
- ``background_objects`` — objects on pseudo-background (where the teacher was sure there is only tissue),
  per teacher confident object.

The teacher's own figures are the reference (near 1, 1, 0 by construction; not exactly, as its pseudo-labels
passed the tissue mask and the energy gate). The student is **flagged** when it falls short of the teacher by
more than a bound in ``BOUNDS``; a flagged student is registered but never activated by default.
"""

from __future__ import annotations

from typing import Any, Callable

HOLD_BACK_EVERY = 5
BOUNDS = {
    "max_recall_drop": 0.35,  # student recall of the teacher's confident objects ≥ teacher's − 0.35
    "max_dice_drop": 0.35,  # pixel agreement with the pseudo-labels ≥ teacher's − 0.35
    "max_extra_background_objects": 0.5,  # new objects on pseudo-background ≤ 0.5 per teacher confident object
}
VERDICTS = ("ok", "flagged", "unchecked")


def split_held_back(items: list, confident_counts: list[int], every: int = HOLD_BACK_EVERY) -> tuple[list, list]:
    """(training items, held-back items): every ``every``-th item (from the middle of each run of ``every``, so the
    held-back part spreads across slides) — none when fewer than two items, or when the training part would be
    left without a single confident object."""
    if len(items) < 2 or every < 2:
        return list(items), []
    held = [i for i in range(len(items)) if i % every == every // 2] or [len(items) // 2]
    train = [i for i in range(len(items)) if i not in held]
    if sum(confident_counts[i] for i in train) == 0:
        return list(items), []
    return [items[i] for i in train], [items[i] for i in held]


def _figures(result) -> dict[str, Any]:
    teacher_objects = result.tp + result.fn
    return {
        "recall": round(result.tp / teacher_objects, 4) if teacher_objects else None,
        "dice": round(result.dice, 4),
        "background_objects": result.fp,
        "matched": result.tp,
    }


def verdict(teacher: dict[str, Any], student: dict[str, Any], confident: int, images: int,
            bounds: dict[str, float] = BOUNDS) -> tuple[str, list[str]]:
    """``("ok" | "flagged" | "unchecked", reasons)`` from the two models' held-back figures."""
    if images == 0:
        return "unchecked", ["no held-back images (fewer than two pseudo-labelled images, or all confident objects "
                             "were needed for training)"]
    reasons = []
    if confident and teacher["recall"] is not None and student["recall"] is not None:
        drop = teacher["recall"] - student["recall"]
        if drop > bounds["max_recall_drop"]:
            reasons.append(f"the student finds {student['recall']:.0%} of the teacher's {confident} confident held-back "
                           f"objects (teacher {teacher['recall']:.0%}; bound: at most {bounds['max_recall_drop']:.0%} fewer)")
    dice_drop = teacher["dice"] - student["dice"]
    if dice_drop > bounds["max_dice_drop"]:
        reasons.append(f"pixel agreement with the pseudo-labels {student['dice']:.2f} (teacher {teacher['dice']:.2f}; "
                       f"bound: at most {bounds['max_dice_drop']:.2f} lower)")
    extra = student["background_objects"] - teacher["background_objects"]
    allowed = bounds["max_extra_background_objects"] * max(1, confident)
    if extra > allowed:
        reasons.append(f"{student['background_objects']} objects where the teacher saw only tissue (teacher "
                       f"{teacher['background_objects']}; bound: at most {allowed:g} more)")
    return ("flagged" if reasons else "ok"), reasons


def check_student(teacher, student, held_back: list, should_cancel: Callable[[], bool] | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Score teacher and student on the held-back :class:`TrainingImage` s; the ``safety`` record of the card."""
    from hubseg.training.evaluate import EvaluationResult, evaluate_image

    totals = {"teacher": EvaluationResult(), "student": EvaluationResult()}
    steps = 2 * len(held_back)
    for step, (role, model) in enumerate((("teacher", teacher), ("student", student))):
        for index, image in enumerate(held_back):
            if progress is not None:
                progress(step * len(held_back) + index, steps, f"{role} on held-back image {index + 1}/{len(held_back)}")
            totals[role].add(evaluate_image(model, image, should_cancel=should_cancel))
    confident = totals["teacher"].tp + totals["teacher"].fn
    figures = {role: _figures(result) for role, result in totals.items()}
    state, reasons = verdict(figures["teacher"], figures["student"], confident, len(held_back))
    return {"verdict": state, "reasons": reasons, "held_back_images": len(held_back),
            "teacher_confident_objects": confident, "teacher": figures["teacher"], "student": figures["student"],
            "bounds": dict(BOUNDS), "activate_by_default": state != "flagged"}
