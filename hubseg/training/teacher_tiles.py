"""The teacher pass's cap: which tissue tiles of each unlabelled slide the teacher looks at.

A *teacher tile* is a square window of ``window_tiles × card.tile_size`` model pixels (default 2 × 256 px =
768 µm for the shipped model). A slide no larger than one teacher tile is taken whole. A larger slide is cut into a grid of teacher
tiles; those whose tissue share (:func:`hubseg.tissue.tissue_mask`) is at least ``MIN_TISSUE_SHARE`` are the
candidates, and at most ``per_slide`` of them are taken, evenly spaced along a serpentine walk of the grid so the
sample spreads across the whole slide (deterministic: the same slide gives the same tiles). The total over a
cohort is capped too (``max_total``): the per-slide count shrinks so that slides × per-slide ≤ the total, which
bounds the teacher pass, the student's calibration and the safety check of a cohort of any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hubseg.errors import InvalidInputError

WINDOW_TILES = 2  # default side of a teacher tile in model tiles: 768 µm for the shipped model, ~4 glomeruli wide
DEFAULT_TILES_PER_SLIDE = 16
DEFAULT_MAX_TEACHER_TILES = 200  # a 40-slide cohort: 5 teacher tiles per slide (≈ 3 mm² of tissue each)
MIN_TISSUE_SHARE = 0.25


@dataclass(frozen=True)
class TeacherCap:
    """At most ``per_slide`` teacher tiles per slide and ``max_total`` over all slides, each ``window_tiles`` model
    tiles wide (objects cut by a teacher tile's edge look less confident to the teacher, so a teacher tile should be
    several glomeruli wide)."""

    per_slide: int = DEFAULT_TILES_PER_SLIDE
    max_total: int = DEFAULT_MAX_TEACHER_TILES
    window_tiles: int = WINDOW_TILES

    def validate(self) -> None:
        if not 1 <= int(self.per_slide) <= 10_000:
            raise InvalidInputError(f"tiles per slide must be between 1 and 10000, got {self.per_slide}")
        if not 1 <= int(self.max_total) <= 1_000_000:
            raise InvalidInputError(f"the total teacher-tile budget must be between 1 and 1000000, got {self.max_total}")
        if not 1 <= int(self.window_tiles) <= 16:
            raise InvalidInputError(f"a teacher tile must be 1 to 16 model tiles wide, got {self.window_tiles}")

    def for_slides(self, slides: int) -> int:
        """Teacher tiles per slide for a run over ``slides`` slides (at least one each)."""
        return max(1, min(int(self.per_slide), int(self.max_total) // max(1, int(slides))))


def window_side_level0(slide, card, window_tiles: int = WINDOW_TILES) -> float:
    """Side of one teacher tile in the slide's level-0 pixels."""
    return int(window_tiles) * int(card.tile_size) * float(card.pixel_size_um) / float(slide.pixel_size_um)


def _serpentine(rows: int, cols: int) -> list[tuple[int, int]]:
    order = []
    for row in range(rows):
        columns = range(cols) if row % 2 == 0 else range(cols - 1, -1, -1)
        order.extend((row, col) for col in columns)
    return order


def spread(candidates: list, count: int) -> list:
    """``count`` items evenly spaced along ``candidates`` (all of them when there are no more than ``count``)."""
    if len(candidates) <= count:
        return list(candidates)
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in picks]


def sample_windows(slide, card, count: int, should_cancel=None,
                   window_tiles: int = WINDOW_TILES) -> list[tuple[float, float, float, float]] | None:
    """Level-0 regions ``(x, y, w, h)`` of at most ``count`` tissue teacher tiles, or ``None``: take the slide whole
    (it is no larger than one teacher tile)."""
    from hubseg.tissue import tissue_mask

    bx, by, bw, bh = (float(v) for v in slide.bounds)
    side = window_side_level0(slide, card, window_tiles)
    if bw <= side and bh <= side:
        return None
    cols, rows = max(1, math.ceil(bw / side)), max(1, math.ceil(bh / side))
    mask, mask_um = tissue_mask(slide, should_cancel=should_cancel)
    scale = float(slide.pixel_size_um) / mask_um  # mask px per level-0 px
    shares = {}
    for row, col in _serpentine(rows, cols):
        x0, y0 = bx + col * side, by + row * side
        w, h = min(side, bx + bw - x0), min(side, by + bh - y0)
        m = mask[int(row * side * scale):int(math.ceil((row * side + h) * scale)),
                 int(col * side * scale):int(math.ceil((col * side + w) * scale))]
        if w >= side / 4 and h >= side / 4:  # slivers at the right/bottom edge hold too little to learn from
            shares[(x0, y0, w, h)] = float(m.mean()) if m.size else 0.0
    candidates = [window for window, share in shares.items() if share >= MIN_TISSUE_SHARE]
    if not candidates:  # faint or unusual tissue: the most tissue-like tiles rather than nothing
        candidates = sorted(shares, key=shares.get, reverse=True)[:count]
    return spread(candidates, count)
