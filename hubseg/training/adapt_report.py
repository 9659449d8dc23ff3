"""What self-training tells its user: progress phases (for a progress dialog's ETA) and the end summary.

:func:`hubseg.training.selftrain.self_train` reports ``progress(done, total, message)`` with messages
``round R/N PHASE: detail``; ``done/total`` count within the phase, so a client can compute a per-phase rate
and ETA:

- ``teacher`` — teacher tiles over all slides; detail ``slide i/n NAME: tile t/T``;
- ``pseudo-labels`` — one message with the counts (``C confident, U uncertain objects; X% of tissue ignored``);
- ``training`` — epochs; detail ``epoch e/E …``;
- ``calibrating`` — the student on its pseudo-labelled images, then the safety check on the held-back tiles.

A cohort batch prefixes the whole message with ``adapt: `` while it adapts.
"""

from __future__ import annotations

import re
from typing import Any

PHASES = ("teacher", "pseudo-labels", "training", "calibrating")
_MESSAGE = re.compile(r"round (\d+)/(\d+) (teacher|pseudo-labels|training|calibrating): ?(.*)$")
_SLIDE = re.compile(r"^slide (\d+)/(\d+) (.+?): (?:tile (\d+)/(\d+)|choosing tissue tiles)$")


def parse_progress(message: str) -> dict[str, Any] | None:
    """``{"phase", "phase_index", "phases", "round", "rounds"[, "slide", "slide_index", "slides", "tile",
    "tiles"]}`` of a self-training progress message, or ``None`` for any other message."""
    match = _MESSAGE.search(message or "")
    if match is None:
        return None
    round_index, rounds, phase, detail = match.groups()
    out: dict[str, Any] = {"phase": phase, "phase_index": PHASES.index(phase), "phases": list(PHASES),
                           "round": int(round_index), "rounds": int(rounds)}
    slide = _SLIDE.match(detail) if phase == "teacher" else None
    if slide is not None:
        out.update(slide_index=int(slide.group(1)), slides=int(slide.group(2)), slide=slide.group(3))
        if slide.group(4) is not None:
            out.update(tile=int(slide.group(4)), tiles=int(slide.group(5)))
    return out


def safe_to_activate(card) -> bool:
    """False when the card's self-training safety check flagged the student (activate only on explicit request)."""
    record = (card.provenance or {}).get("self_training") or {}
    return (record.get("safety") or {}).get("verdict") != "flagged"


def adaptation_summary(card, activated: bool = False) -> dict[str, Any]:
    """What an adapted model learned, as the server's jobs and ``hubseg adapt`` report it at the end."""
    record = (card.provenance or {}).get("self_training") or {}
    gate = card.energy_gate if isinstance(card.energy_gate, dict) else {}
    safety = record.get("safety") or {}
    tiles = record.get("teacher_tiles") or {}
    return {
        "model": card.name,
        "teacher": record.get("teacher"),
        "round": record.get("round"), "rounds": record.get("rounds"),
        "slides": len(record.get("images") or []),
        "teacher_tiles": tiles.get("tiles"), "held_back_tiles": tiles.get("held_back"),
        "pseudo_positive_objects": record.get("pseudo_positive_objects"),
        "uncertain_objects": record.get("uncertain_objects"),
        "ignored_tissue_fraction": record.get("ignored_tissue_fraction"),
        "gate": {"cutoff": gate.get("cutoff"), "z_cutoff": gate.get("z_cutoff"), "source": gate.get("source"),
                 "teacher_cutoff": gate.get("teacher_cutoff")} if gate else None,
        "safety": {k: safety.get(k) for k in ("verdict", "reasons", "held_back_images", "teacher_confident_objects",
                                               "teacher", "student", "bounds")} if safety else None,
        "cohort": record.get("cohort"),
        "activated": bool(activated),
    }
