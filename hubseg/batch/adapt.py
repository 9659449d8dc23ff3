"""Adapt first, then detect: a cohort batch self-trains on a bounded sample of its own slides.

``hubseg batch --adapt`` and the server's batches with ``"adapt"`` call :func:`adapt_on_cohort` before any
detection: at most ``max_slides`` slides, evenly spread over the cohort's list, go through
:func:`hubseg.training.selftrain.self_train` with its teacher-pass cap (so the adaptation costs the same for 40
slides or 4000); the new model's card names the cohort. The batch then detects every slide with the adapted model
— unless its safety check flagged it, in which case the batch keeps the base model and says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from hubseg.errors import InvalidInputError

DEFAULT_ADAPT_SLIDES = 40


def cohort_sample(items: list, max_slides: int = DEFAULT_ADAPT_SLIDES) -> list:
    """At most ``max_slides`` of the batch items, evenly spread over the list (deterministic)."""
    from hubseg.training.teacher_tiles import spread

    if int(max_slides) < 1:
        raise InvalidInputError(f"the number of slides to adapt on must be >= 1, got {max_slides}")
    return spread(list(items), int(max_slides))


def adapt_on_cohort(items: list, registry, base_model: str | None, cohort: str, config=None,
                    max_slides: int = DEFAULT_ADAPT_SLIDES, progress: Callable[[int, int, str], None] | None = None,
                    should_cancel: Callable[[], bool] | None = None) -> tuple[Any, bool, dict[str, Any]]:
    """Self-train on a sample of the cohort. Returns ``(card, use_it, summary)``: the registered card, whether the
    batch should detect with it (its safety check did not flag it), and :func:`adaptation_summary`."""
    from hubseg.training.adapt_report import adaptation_summary, safe_to_activate
    from hubseg.training.selftrain import SelfTrainConfig, self_train

    sample = cohort_sample(items, max_slides)
    readable = [item for item in sample if Path(item.path).is_file()]
    if not readable:
        raise InvalidInputError("none of the slides sampled for adaptation exists; check the batch's paths")
    config = config or SelfTrainConfig()
    config = replace(config, cohort={"name": cohort, "slides": len(items), "adapted_on": len(readable)})

    def report(done: int, total: int, message: str) -> None:
        if progress is not None:
            progress(done, total, f"adapt: {message}")

    cards = self_train([(Path(item.path), item.pixel_size_um) for item in readable], registry, config,
                       base_model=base_model, progress=report, should_cancel=should_cancel)
    card = cards[-1]
    use_it = safe_to_activate(card)
    summary = adaptation_summary(card)
    summary["used_for_detection"] = use_it
    return card, use_it, summary
