"""Overlapping tile grids at model scale and nnU-Net-style Gaussian importance weights."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hubseg.errors import InvalidInputError


@dataclass(frozen=True)
class Tile:
    """One tile: ``index`` in row-major order, ``row``/``col`` in the grid, top-left ``x``/``y`` in map px."""

    index: int
    row: int
    col: int
    x: int
    y: int


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile starts covering ``[0, length)``: regular ``step``, last tile flush with the end.

    A map shorter than a tile gets one tile at 0 that reaches past the map (it reads real slide pixels
    or white beyond the slide, and the excess output is discarded).
    """
    if length <= tile:
        return [0]
    count = int(math.ceil((length - tile) / step)) + 1
    starts = [min(i * step, length - tile) for i in range(count)]
    return sorted(set(starts))


def tile_count(width: int, height: int, tile_size: int, overlap: int) -> int:
    """How many tiles :class:`TileGrid` would plan for a ``width × height`` map, in O(1) (no tile list)."""
    step = int(tile_size) - int(overlap)

    def along(length: int) -> int:
        length = max(1, int(length))
        return 1 if length <= tile_size else int(math.ceil((length - tile_size) / step)) + 1

    return along(width) * along(height)


def planned_tiles(slide_pixel_size_um: float, region_size: tuple[float, float], model_pixel_size_um: float,
                  tile_size: int, overlap: int | None = None) -> int:
    """Tiles a detection of a ``region_size`` (level-0 w, h) region would plan, computed without any grid.

    Cheap enough for a request thread: callers refuse over-budget jobs (``hubseg.limits.check_tile_budget``)
    before anything is queued or allocated.
    """
    downsample = float(model_pixel_size_um) / float(slide_pixel_size_um)
    width = max(1, int(round(float(region_size[0]) / downsample)))
    height = max(1, int(round(float(region_size[1]) / downsample)))
    overlap = int(overlap if overlap is not None else tile_size // 4)
    return tile_count(width, height, int(tile_size), overlap)


class TileGrid:
    """Overlapping ``tile_size`` tiles over a ``width × height`` map (model-scale pixels).

    Tiles advance by ``tile_size - overlap``; the last row/column is shifted to end flush with the map, so
    every map pixel is covered and tiles never start outside the map.
    """

    def __init__(self, width: int, height: int, tile_size: int, overlap: int):
        if tile_size < 16:
            raise InvalidInputError(f"tile size must be at least 16 px, got {tile_size}")
        if not 0 <= overlap < tile_size:
            raise InvalidInputError(f"tile overlap must be in [0, tile size {tile_size}), got {overlap}")
        if width < 1 or height < 1:
            raise InvalidInputError(f"the region is empty at model scale ({width}×{height} px)")
        self.width = int(width)
        self.height = int(height)
        self.tile_size = int(tile_size)
        self.overlap = int(overlap)
        self.step = self.tile_size - self.overlap
        self.xs = _starts(self.width, self.tile_size, self.step)
        self.ys = _starts(self.height, self.tile_size, self.step)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of tiles."""
        return (len(self.ys), len(self.xs))

    def __len__(self) -> int:
        return len(self.xs) * len(self.ys)

    def __iter__(self):
        index = 0
        for row, y in enumerate(self.ys):
            for col, x in enumerate(self.xs):
                yield Tile(index, row, col, x, y)
                index += 1

    def __repr__(self) -> str:
        return f"TileGrid({self.width}×{self.height}, tile={self.tile_size}, overlap={self.overlap}, tiles={len(self)})"


@lru_cache(maxsize=8)
def _gaussian(tile_size: int, sigma_scale: float) -> np.ndarray:
    center = (tile_size - 1) / 2.0
    sigma = tile_size * sigma_scale
    coords = np.arange(tile_size, dtype=np.float64) - center
    one_d = np.exp(-(coords**2) / (2.0 * sigma**2))
    weights = np.outer(one_d, one_d)
    weights /= weights.max()
    # As in nnU-Net: no zero weights, or border pixels covered by a single tile would be undefined.
    smallest = weights[weights > 0].min()
    weights = np.maximum(weights, smallest)
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def gaussian_importance(tile_size: int, sigma_scale: float = 1.0 / 8.0) -> np.ndarray:
    """``tile_size²`` float32 Gaussian weights (σ = ``sigma_scale``·tile, max 1, no zeros), read-only."""
    return _gaussian(int(tile_size), float(sigma_scale))
