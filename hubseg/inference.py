"""Sliding-window inference: overlapping tiles → TTA-averaged probability and negative energy, Gaussian-blended.

Memory is bounded by the tile row, not the slide: tiles are processed in row-major order and blended into a
band buffer one tile high; rows no later tile can touch are normalised and flushed to the output, which
lives in RAM for small maps and in raw float32 files in a temporary folder for large ones (written and read
with ``pwrite``/``pread``, so the process never maps the whole map). Tiles without tissue (low-resolution
saturation mask) or outside the requested geometry are never read or sent to the model.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.errors import Cancelled, InvalidInputError
from hubseg.limits import check_tile_budget
from hubseg.tempmaps import make_map_dir
from hubseg.tiling import Tile, TileGrid, gaussian_importance, tile_count

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]

# Flip dimensions of an N×C×H×W tensor per TTA mode: h = horizontal (width axis), v = vertical.
_TTA_FLIPS = {
    "none": [()],
    "h": [(), (3,)],
    "flips": [(), (3,), (2,)],
    "all": [(), (3,), (2,), (2, 3)],
}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# Maps larger than this many pixels are stitched to disk instead of RAM.
DEFAULT_IN_MEMORY_PIXELS = 8 * 1024 * 1024


@dataclass
class InferenceOptions:
    """How tiles are cut and run. ``None`` means "the model card's value" (tile size) or a derived default."""

    tile_size: int | None = None
    overlap: int | None = None  # default: tile_size // 4
    tta: str = "flips"
    batch_size: int = 8
    precision: str = "auto"  # autocast on GPU only: auto = bf16 if supported else fp16; fp32 disables
    energy_temperature: float = 1.0
    tissue_detection: bool = True
    tissue_pixel_size_um: float | None = None
    disk_backed: bool | None = None  # None: automatic (large maps go to disk)
    in_memory_pixels: int = DEFAULT_IN_MEMORY_PIXELS
    prefetch: bool = True  # read the next batch in a background thread while the model runs
    read_workers: int | None = None  # threads reading tiles of one batch; None: 1 on CPU, 4 on a GPU
    stain_normalization: str = "model"  # model (the card's) | none | macenko | reinhard, per tile
    max_tiles: int | None = None  # refuse (InvalidInputError) a region needing more tiles; None = no cap

    def validate(self) -> None:
        if self.stain_normalization not in STAIN_NORMALIZATION_CHOICES:
            raise InvalidInputError(
                f"stain_normalization must be one of {', '.join(STAIN_NORMALIZATION_CHOICES)}; "
                f"got {self.stain_normalization!r}"
            )
        if self.tta not in TTA_MODES:
            raise InvalidInputError(f"tta must be one of {', '.join(TTA_MODES)}; got {self.tta!r}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if int(self.batch_size) < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.tile_size is not None and not 16 <= int(self.tile_size) <= 4096:
            raise InvalidInputError(f"tile size must be between 16 and 4096 px, got {self.tile_size}")
        if not self.energy_temperature > 0:
            raise InvalidInputError(f"energy temperature must be > 0, got {self.energy_temperature}")


class _RowStore:
    """A float32 ``height × width`` array written and read by rows, in RAM or in a raw file."""

    def __init__(self, height: int, width: int, path: str | None):
        self.shape = (height, width)
        self.path = path
        self._row_bytes = width * 4
        if path is None:
            self._array = np.zeros((height, width), np.float32)
            self._fd = None
        else:
            self._array = None
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.ftruncate(self._fd, height * self._row_bytes)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if self._fd is None:
            self._array[y0:y0 + rows.shape[0]] = rows
        else:
            os.pwrite(self._fd, rows.tobytes(), y0 * self._row_bytes)

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        y0, y1 = max(0, y0), min(self.shape[0], y1)
        if self._fd is None:
            return self._array[y0:y1].copy()
        count = max(0, y1 - y0)
        data = os.pread(self._fd, count * self._row_bytes, y0 * self._row_bytes)
        return np.frombuffer(data, np.float32).reshape(count, self.shape[1]).copy()

    def as_array(self) -> np.ndarray:
        """The whole array: the RAM array, or a read-only memmap of the file (nothing is read until sliced)."""
        if self._fd is None:
            return self._array
        return np.memmap(self.path, dtype=np.float32, mode="r", shape=self.shape)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class PredictionMaps:
    """Probability and negative energy at model scale for a level-0 region.

    Map pixel (i, j) covers level-0 ``origin + (j, i)·downsample``. ``probability``/``energy`` are float32
    arrays (RAM, or read-only memmaps of temporary files when large); ``read_rows(name, y0, y1)`` reads a
    row band without mapping the file (what bounded-memory consumers use). Call ``close()`` to delete the
    temporary files (also done when the object is garbage-collected).
    """

    probability: np.ndarray
    energy: np.ndarray
    origin: tuple[float, float]
    downsample: float
    pixel_size_um: float
    tiles_total: int = 0
    tiles_skipped: int = 0
    disk_backed: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _stores: dict[str, _RowStore] = field(default_factory=dict, repr=False)
    _tempdir: str | None = field(default=None, repr=False)

    def __post_init__(self):
        if self._tempdir:
            self._finalizer = weakref.finalize(self, _cleanup, list(self._stores.values()), self._tempdir)
        else:
            self._finalizer = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.probability.shape)

    def read_rows(self, name: str, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` of ``"probability"`` or ``"energy"`` as a new float32 array."""
        if name not in ("probability", "energy"):
            raise ValueError("name must be 'probability' or 'energy'")
        store = self._stores.get(name)
        if store is not None:
            return store.read_rows(y0, y1)
        array = getattr(self, name)
        return np.array(array[max(0, y0):min(array.shape[0], y1)], dtype=np.float32)

    def close(self) -> None:
        if self._finalizer is not None:
            self.probability = self.energy = np.zeros((0, 0), np.float32)
            self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _cleanup(stores, tempdir):
    for store in stores:
        store.close()
    shutil.rmtree(tempdir, ignore_errors=True)


def map_geometry(slide, model_pixel_size_um: float, region) -> tuple[float, int, int]:
    """(downsample, map width, map height) of a level-0 region at the model's pixel size."""
    downsample = float(model_pixel_size_um) / float(slide.pixel_size_um)
    _, _, w, h = region
    return downsample, max(1, int(round(w / downsample))), max(1, int(round(h / downsample)))


def _check_cancel(should_cancel: CancelFn | None, where: str) -> None:
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"detection cancelled {where}")


def _autocast_dtype(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def run_batch(model, tiles_rgb: np.ndarray, tta: str, temperature: float, autocast_dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``N×T×T×3`` → (probability, negative energy), float32 ``N×T×T``, averaged over the TTA flips."""
    flips = _TTA_FLIPS[tta]
    with torch.inference_mode():
        x = model.preprocess(tiles_rgb)
        prob_sum = None
        energy_sum = None
        for dims in flips:
            xin = torch.flip(x, dims) if dims else x
            if autocast_dtype is not None:
                with torch.autocast(device_type=x.device.type, dtype=autocast_dtype):
                    logits = model.logits(xin)
            else:
                logits = model.logits(xin)
            logits = logits.float()
            if dims:
                logits = torch.flip(logits, dims)
            prob = model.probability(logits)
            energy = model.negative_energy(logits, temperature)
            prob_sum = prob if prob_sum is None else prob_sum + prob
            energy_sum = energy if energy_sum is None else energy_sum + energy
        count = float(len(flips))
        prob = (prob_sum / count).float().cpu().numpy()
        energy = (energy_sum / count).float().cpu().numpy()
    return prob, energy


def _tile_has_tissue(tile: Tile, tile_size: int, keep_mask: np.ndarray | None, mask_scale: float) -> bool:
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


def _keep_mask(slide, region, options: InferenceOptions, geometry,
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


def predict_maps(
    slide,
    model,
    region: tuple[float, float, float, float] | None = None,
    options: InferenceOptions | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    geometry=None,
) -> PredictionMaps:
    """Probability and negative-energy maps of ``region`` (level-0 x, y, w, h) at the model's pixel size.

    Tiles of ``options.tile_size`` (default the card's) overlap by ``options.overlap`` (default a quarter
    tile), are averaged over flip TTA and blended with Gaussian importance (σ = tile/8). ``progress(done,
    total, message)`` is called after every batch (skipped tiles count as done); ``should_cancel()`` is
    checked during tissue/grid planning and before every batch, and raises
    :class:`hubseg.errors.Cancelled`. ``options.max_tiles`` refuses an over-budget region before planning.

    ``options.stain_normalization`` (``"model"`` = the card's field) normalises each tile, as read at model
    scale, right before ``model.preprocess`` (:class:`hubseg.stain.StainNormalizer`, built once per call).
    Normalisation estimates stains per tile, so with it on, tiled and untiled maps no longer agree
    exactly: the tiled == untiled invariant holds only with stain normalisation off.
    """
    options = options or InferenceOptions()
    options.validate()
    card = model.card
    stain_normalizer = build_stain_normalizer(options.stain_normalization, card)
    if region is None:
        region = slide.bounds
    region = tuple(float(v) for v in region)
    tile_size = int(options.tile_size or card.tile_size)
    overlap = int(options.overlap if options.overlap is not None else tile_size // 4)
    downsample, width, height = map_geometry(slide, card.pixel_size_um, region)
    if options.max_tiles is not None:  # before any grid exists: a wrong pixel size must not allocate
        check_tile_budget(tile_count(width, height, tile_size, overlap), int(options.max_tiles))
    grid = TileGrid(width, height, tile_size, overlap)
    total = len(grid)
    timings = {"tissue": 0.0, "read": 0.0, "model": 0.0, "stitch": 0.0}
    if progress:
        progress(0, total, "planning tiles (tissue detection)")

    started = time.perf_counter()
    keep, keep_pixel_size = _keep_mask(slide, region, options, geometry, should_cancel)
    timings["tissue"] = time.perf_counter() - started
    mask_scale = (card.pixel_size_um / keep_pixel_size) if keep is not None else 1.0
    tiles = []
    for tile in grid:
        if tile.index % 4096 == 0:
            _check_cancel(should_cancel, "while planning tiles")
        if _tile_has_tissue(tile, tile_size, keep, mask_scale):
            tiles.append(tile)
    skipped = total - len(tiles)

    disk = options.disk_backed
    if disk is None:
        disk = width * height > options.in_memory_pixels
    tempdir = make_map_dir() if disk else None
    stores = {
        name: _RowStore(height, width, os.path.join(tempdir, f"{name}.f32") if disk else None)
        for name in ("probability", "energy")
    }
    try:
        _stitch(slide, model, region, downsample, grid, tiles, skipped, stores, options, timings, progress, should_cancel,
                stain_normalizer)
    except BaseException:
        for store in stores.values():
            store.close()
        if tempdir:
            shutil.rmtree(tempdir, ignore_errors=True)
        raise
    return PredictionMaps(
        probability=stores["probability"].as_array(),
        energy=stores["energy"].as_array(),
        origin=(region[0], region[1]),
        downsample=downsample,
        pixel_size_um=float(card.pixel_size_um),
        tiles_total=total,
        tiles_skipped=skipped,
        disk_backed=bool(disk),
        timings=timings,
        _stores=stores if disk else {},
        _tempdir=tempdir,
    )


def resolve_stain_normalization(choice: str, card) -> str | None:
    """The stain normalisation method a detection uses: ``choice`` unless ``"model"`` (then the card's); None = off."""
    if choice not in STAIN_NORMALIZATION_CHOICES:
        raise InvalidInputError(
            f"stain_normalization must be one of {', '.join(STAIN_NORMALIZATION_CHOICES)}; got {choice!r}"
        )
    if choice == "model":
        return getattr(card, "stain_normalization", None)
    return None if choice == "none" else choice


def build_stain_normalizer(choice: str, card):
    """A :class:`hubseg.stain.StainNormalizer` for ``choice`` (see :func:`resolve_stain_normalization`) or None."""
    method = resolve_stain_normalization(choice, card)
    if method is None:
        return None
    from hubseg.stain import StainNormalizer  # torchstain is only needed when normalising

    return StainNormalizer(method)


def _stitch(slide, model, region, downsample, grid, tiles, skipped, stores, options, timings, progress, should_cancel,
            stain_normalizer=None):
    tile_size = grid.tile_size
    width, height = grid.width, grid.height
    weights = gaussian_importance(tile_size)
    autocast_dtype = _autocast_dtype(model.device, options.precision)
    band_rows = min(tile_size, height)
    acc_p = np.zeros((band_rows, width), np.float32)
    acc_e = np.zeros((band_rows, width), np.float32)
    acc_w = np.zeros((band_rows, width), np.float32)
    band_y = 0  # map row of the band buffer's first row
    total = len(grid)
    done = skipped

    def flush(until: int) -> None:
        """Normalise and write map rows [band_y, until); shift the band so it starts at ``until``."""
        nonlocal band_y
        until = min(until, height)
        # Rows past the buffer (skipped tile rows) were never touched: the stores already hold zeros there.
        count = min(until - band_y, band_rows)
        if count <= 0:
            return
        w = acc_w[:count]
        covered = w > 0
        safe = np.where(covered, w, 1.0)
        stores["probability"].write_rows(band_y, np.where(covered, acc_p[:count] / safe, 0.0))
        stores["energy"].write_rows(band_y, np.where(covered, acc_e[:count] / safe, 0.0))
        for acc in (acc_p, acc_e, acc_w):
            if count < band_rows:
                acc[:band_rows - count] = acc[count:].copy()
            acc[band_rows - count:] = 0
        band_y = until

    workers = options.read_workers or (1 if model.device.type == "cpu" else 4)
    reader_pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def read_batch(batch: list[Tile]) -> np.ndarray:
        t0 = time.perf_counter()
        out = np.empty((len(batch), tile_size, tile_size, 3), np.uint8)

        def read_one(i: int) -> None:
            tile = batch[i]
            out[i] = slide.read_scaled(
                region[0] + tile.x * downsample, region[1] + tile.y * downsample, tile_size, tile_size, downsample
            )
            if stain_normalizer is not None:  # per tile, at model scale, before model.preprocess
                out[i] = stain_normalizer(out[i])

        if reader_pool is not None:
            list(reader_pool.map(read_one, range(len(batch))))
        else:
            for i in range(len(batch)):
                read_one(i)
        timings["read"] += time.perf_counter() - t0
        return out

    if progress:
        progress(done, total, f"{skipped} of {total} tiles skipped (no tissue)" if skipped else "starting")
    batch_size = int(options.batch_size)
    batches = [tiles[i:i + batch_size] for i in range(0, len(tiles), batch_size)]
    executor = ThreadPoolExecutor(max_workers=1) if (options.prefetch and len(batches) > 1) else None
    try:
        pending = executor.submit(read_batch, batches[0]) if (executor and batches) else None
        for index, batch in enumerate(batches):
            _check_cancel(should_cancel, "between batches")
            if executor:
                pixels = pending.result()
                pending = executor.submit(read_batch, batches[index + 1]) if index + 1 < len(batches) else None
            else:
                pixels = read_batch(batch)
            t0 = time.perf_counter()
            prob, energy = run_batch(model, pixels, options.tta, options.energy_temperature, autocast_dtype)
            timings["model"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for k, tile in enumerate(batch):
                if tile.y > band_y:
                    flush(tile.y)
                th = min(tile_size, height - tile.y)
                tw = min(tile_size, width - tile.x)
                r0 = tile.y - band_y
                wgt = weights[:th, :tw]
                acc_p[r0:r0 + th, tile.x:tile.x + tw] += prob[k, :th, :tw] * wgt
                acc_e[r0:r0 + th, tile.x:tile.x + tw] += energy[k, :th, :tw] * wgt
                acc_w[r0:r0 + th, tile.x:tile.x + tw] += wgt
            timings["stitch"] += time.perf_counter() - t0
            done += len(batch)
            if progress:
                progress(done, total, f"{done}/{total} tiles")
    finally:
        if executor:
            executor.shutdown(wait=True, cancel_futures=True)
        if reader_pool is not None:
            reader_pool.shutdown(wait=True)
    t0 = time.perf_counter()
    while band_y < height:  # every tile is done: finish (a stop after the last batch keeps the result)
        flush(band_y + band_rows)
    timings["stitch"] += time.perf_counter() - t0
