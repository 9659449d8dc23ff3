"""Sliding-window inference, planner → predictor → merger: overlapping tiles → TTA-averaged probability and
negative energy, Gaussian-blended.

Memory is bounded by the tile row, not the slide: tiles are processed in row-major order and blended into a
band buffer one tile high; rows no later tile can touch are normalised and flushed to the output, which
lives in RAM for small maps and in raw float32 files in a temporary folder for large ones (written and read
with ``pwrite``/``pread``, so the process never maps the whole map). Tiles without tissue (low-resolution
saturation mask) or outside the requested geometry are never read or sent to the model.
"""

from __future__ import annotations

import time

from hubseg.inference.merger import PredictionMaps, RowBandMerger, discard_stores, open_stores
from hubseg.inference.options import CancelFn, InferenceOptions, ProgressFn, build_stain_normalizer
from hubseg.inference.plan import TilePlan, plan_tiles
from hubseg.inference.predictor import Predictor, TileReader


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
    region = tuple(float(v) for v in (slide.bounds if region is None else region))
    timings = {"tissue": 0.0, "read": 0.0, "model": 0.0, "stitch": 0.0}
    plan = plan_tiles(slide, card, region, options, geometry, progress, should_cancel, timings)
    width, height = plan.grid.width, plan.grid.height
    disk = options.disk_backed
    if disk is None:
        disk = width * height > options.in_memory_pixels
    stores, tempdir = open_stores(height, width, bool(disk))
    try:
        _run_plan(slide, model, plan, RowBandMerger(stores, width, height, plan.grid.tile_size), options, timings,
                  progress, should_cancel, stain_normalizer)
    except BaseException:
        discard_stores(stores, tempdir)
        raise
    return PredictionMaps(
        probability=stores["probability"].as_array(),
        energy=stores["energy"].as_array(),
        origin=(region[0], region[1]),
        downsample=plan.downsample,
        pixel_size_um=float(card.pixel_size_um),
        tiles_total=plan.total,
        tiles_skipped=plan.skipped,
        disk_backed=bool(disk),
        timings=timings,
        _stores=stores if disk else {},
        _tempdir=tempdir,
    )


def _run_plan(slide, model, plan: TilePlan, merger: RowBandMerger, options: InferenceOptions, timings: dict,
              progress: ProgressFn | None, should_cancel: CancelFn | None, stain_normalizer) -> None:
    """Read, predict and merge the plan's tiles batch by batch; progress after every batch."""
    total, skipped = plan.total, plan.skipped
    done = skipped
    predictor = Predictor(model, options)
    if progress:
        progress(done, total, f"{skipped} of {total} tiles skipped (no tissue)" if skipped else "starting")
    with TileReader(slide, plan, options, model.device, stain_normalizer, timings) as reader:
        for batch, pixels in reader.batches_checked(should_cancel):
            t0 = time.perf_counter()
            prob, energy = predictor(pixels)
            timings["model"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for k, tile in enumerate(batch):
                merger.add(tile, prob[k], energy[k])
            timings["stitch"] += time.perf_counter() - t0
            done += len(batch)
            if progress:
                progress(done, total, f"{done}/{total} tiles")
    t0 = time.perf_counter()
    merger.finish()  # every tile is done: finish (a stop after the last batch keeps the result)
    timings["stitch"] += time.perf_counter() - t0
