"""Sliding-window inference as three parts: the planner (:mod:`.plan`: grid, tissue and geometry mask), the
predictor (:mod:`.predictor`: tile reading and the batched forward pass with flip TTA) and the merger
(:mod:`.merger`: the row-band blend into maps in RAM or on disk). :func:`predict_maps` runs them in turn."""

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.inference.merger import PredictionMaps, RowBandMerger, RowStore
from hubseg.inference.options import (
    DEFAULT_IN_MEMORY_PIXELS,
    PRECISIONS,
    CancelFn,
    InferenceOptions,
    ProgressFn,
    build_stain_normalizer,
    resolve_stain_normalization,
)
from hubseg.inference.plan import TilePlan, keep_mask, map_geometry, plan_tiles, tile_has_tissue
from hubseg.inference.predict import predict_maps
from hubseg.inference.predictor import TTA_FLIPS, Predictor, TileReader, run_batch

__all__ = [
    "DEFAULT_IN_MEMORY_PIXELS", "PRECISIONS", "STAIN_NORMALIZATION_CHOICES", "TTA_FLIPS", "TTA_MODES", "CancelFn",
    "InferenceOptions", "PredictionMaps", "Predictor", "ProgressFn", "RowBandMerger", "RowStore", "TilePlan",
    "TileReader", "build_stain_normalizer", "keep_mask", "map_geometry", "plan_tiles", "predict_maps",
    "resolve_stain_normalization", "run_batch", "tile_has_tissue",
]
