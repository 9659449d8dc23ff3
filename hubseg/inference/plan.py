"""The planner: the tile grid over a region at model scale, and which tiles are worth running (tissue ∩ the
requested geometry, from a low-resolution mask). Tiles it leaves out are never read or sent to the model."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from hubseg.inference.options import CancelFn, InferenceOptions, check_cancel
from hubseg.limits import check_tile_budget
from hubseg.tiling import Tile, TileGrid, tile_count


def map_geometry(slide, model_pixel_size_um: float, region) -> tuple[float, int, int]:
    """(downsample, map width, map height) of a level-0 region at the model's pixel size."""
    downsample = float(model_pixel_size_um) / float(slide.pixel_size_um)
    _, _, w, h = region
    return downsample, max(1, int(round(w / downsample))), max(1, int(round(h / downsample)))


def tile_has_tissue(tile: Tile, tile_size: int, keep_mask: np.ndarray | None, mask_scale: float) -> bool:
    """Whether the tile's footprint (map px) touches the keep mask (map px × mask_scale = mask px)."""
    if keep_mask is None:
        return True
    h, w = keep_mask.shape
    y0 = int(math.floor(tile.y * mask_scale))
    x0 = int(math.floor(tile.x * mask_scale))
    y1 = int(math.ceil((tile.y + tile_size) * mask_scale))
    x1 = int(math.ceil((tile.x + tile_size) * mask_scale))
    y0, x0 = max(0, min(h - 1, y0)), max(0, min(w - 1, x0))
    y1, x1 = max(y0 + 1, min(h, y1)), max(x0 + 1, min(w, x1))
    return bool(keep_mask[y0:y1, x0:x1].any())


def keep_mask(slide, region, options: InferenceOptions, geometry,
               should_cancel: CancelFn | None = None) -> tuple[np.ndarray | None, float | None]:
    """Low-resolution mask of where tiles are worth running (tissue ∩ geometry) and its pixel size."""
    if not options.tissue_detection and geometry is None:
        return None, None
    from hubseg.tissue import DEFAULT_TISSUE_PIXEL_SIZE_UM, tissue_mask

    pixel_size = options.tissue_pixel_size_um or max(DEFAULT_TISSUE_PIXEL_SIZE_UM, slide.pixel_size_um)
    if options.tissue_detection:
        mask, pixel_size = tissue_mask(slide, pixel_size, region=region, should_cancel=should_cancel)
    else:
        ds = pixel_size / slide.pixel_size_um
        mask = np.ones((max(1, math.ceil(region[3] / ds)), max(1, math.ceil(region[2] / ds))), bool)
    if geometry is not None:
        from scipy import ndimage as ndi

        from hubseg.geometry import rasterize_geometry

        ds = pixel_size / slide.pixel_size_um
        inside = rasterize_geometry(geometry, mask.shape, (region[0], region[1]), ds)
        inside = ndi.binary_dilation(inside, iterations=2)  # geometry edges fall inside kept tiles
        mask &= inside
    return mask, pixel_size


@dataclass
class TilePlan:
    """The grid over ``region`` at model scale and the tiles to run (row-major; the others were skipped)."""

    region: tuple[float, float, float, float]
    downsample: float
    grid: TileGrid
    tiles: list[Tile] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.grid)

    @property
    def skipped(self) -> int:
        return self.total - len(self.tiles)


def plan_tiles(slide, card, region, options: InferenceOptions, geometry=None, progress=None,
               should_cancel: CancelFn | None = None, timings: dict | None = None) -> TilePlan:
    """Plan ``region`` (level-0 x, y, w, h): refuse it over ``options.max_tiles`` before any grid exists, then keep
    the tiles that touch tissue ∩ ``geometry``. ``timings["tissue"]`` gets the seconds the mask took."""
    tile_size = int(options.tile_size or card.tile_size)
    overlap = int(options.overlap if options.overlap is not None else tile_size // 4)
    downsample, width, height = map_geometry(slide, card.pixel_size_um, region)
    if options.max_tiles is not None:  # before any grid exists: a wrong pixel size must not allocate
        check_tile_budget(tile_count(width, height, tile_size, overlap), int(options.max_tiles))
    plan = TilePlan(region, downsample, TileGrid(width, height, tile_size, overlap))
    if progress:
        progress(0, plan.total, "planning tiles (tissue detection)")
    started = time.perf_counter()
    keep, keep_pixel_size = keep_mask(slide, region, options, geometry, should_cancel)
    if timings is not None:
        timings["tissue"] = time.perf_counter() - started
    mask_scale = (card.pixel_size_um / keep_pixel_size) if keep is not None else 1.0
    for tile in plan.grid:
        if tile.index % 4096 == 0:
            check_cancel(should_cancel, "while planning tiles")
        if tile_has_tissue(tile, tile_size, keep, mask_scale):
            plan.tiles.append(tile)
    return plan


__all__ = ["TilePlan", "keep_mask", "map_geometry", "plan_tiles", "tile_has_tissue"]
