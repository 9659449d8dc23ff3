"""Detection pipeline: slide → tiles → model → maps → instances → energy gate → QuPath GeoJSON.

``detect`` is the single entry point the CLI, the server and project batch detection call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from hubseg.agreement import compute_agreement
from hubseg.errors import InvalidInputError
from hubseg.gating import apply_gate
from hubseg.inference import CancelFn, InferenceOptions, PredictionMaps, ProgressFn, predict_maps
from hubseg.limits import check_references
from hubseg.instances import (
    DEFAULT_BAND_ROWS,
    DEFAULT_MIN_AREA_UM2,
    DEFAULT_SIMPLIFY_UM,
    DetectedObject,
    extract_instances,
)
from hubseg.overlay import render_overlay
from hubseg.qupath_geojson import OBJECT_TYPES, to_feature_collection, write_feature_collection
from hubseg.review_score import score_objects
from hubseg.splitting import split_options_for
from hubseg.vocabulary import CLASS_UNCERTAIN

DEFAULT_UNCERTAIN_CLASS = CLASS_UNCERTAIN
DEFAULT_UNCERTAIN_COLOR = (255, 140, 0)  # orange: distinct from the card's class colour (green by default)


@dataclass
class DetectionOptions(InferenceOptions):
    """Everything tunable about one detection. ``None`` = the model card's value.

    Inherits tiling/TTA/precision options from :class:`hubseg.inference.InferenceOptions`
    (``tile_size, overlap, tta, batch_size, precision, energy_temperature, tissue_detection, ...``) and
    ``stain_normalization``: ``"model"`` (default: the card's ``stain_normalization``), ``"none"``,
    ``"macenko"`` or ``"reinhard"`` — applied per tile at model scale before ``model.preprocess``; being per
    tile, it is the one option under which tiled and untiled detection are not guaranteed to agree.
    """

    threshold: float | None = None
    min_area_um2: float = DEFAULT_MIN_AREA_UM2
    simplify_um: float = DEFAULT_SIMPLIFY_UM
    object_type: str = "annotation"
    uncertain_class_name: str = DEFAULT_UNCERTAIN_CLASS
    uncertain_color: tuple[int, int, int] = DEFAULT_UNCERTAIN_COLOR
    use_energy_gate: bool = True
    band_rows: int = DEFAULT_BAND_ROWS
    split_touching: bool = True  # touching instances → separate objects (hubseg.splitting)
    references: int = 0  # mark this many of the most certain objects with a reference rank (0 = none)

    def validate(self) -> None:
        super().validate()
        if self.threshold is not None and not 0.0 < float(self.threshold) < 1.0:
            raise InvalidInputError(f"threshold must be between 0 and 1 (exclusive), got {self.threshold}")
        if not float(self.min_area_um2) >= 0:
            raise InvalidInputError(f"min_area_um2 must be >= 0, got {self.min_area_um2}")
        if not float(self.simplify_um) >= 0:
            raise InvalidInputError(f"simplify_um must be >= 0, got {self.simplify_um}")
        check_references(self.references)
        if self.object_type not in OBJECT_TYPES:
            raise InvalidInputError(f"object_type must be one of {', '.join(OBJECT_TYPES)}; got {self.object_type!r}")


@dataclass
class DetectionResult:
    """Objects (ordered for review: uncertain first, then lowest review score / energy first) and what produced them."""

    objects: list[DetectedObject]
    model_name: str
    model_version: int
    region: tuple[float, float, float, float]
    pixel_size_um: float
    model_pixel_size_um: float
    threshold: float
    energy_gate: dict[str, Any] | None
    tiles_total: int
    tiles_skipped: int
    review_gate: dict[str, Any] | None = None  # the gate when the card's review model decides (then energy_gate is None)
    object_type: str = "annotation"
    tta: str = "none"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.objects)

    @property
    def uncertain_count(self) -> int:
        return sum(1 for o in self.objects if o.uncertain)

    def collection_properties(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model_name, "version": int(self.model_version)},
            "region": [round(float(v), 3) for v in self.region],
            "pixel_size_um": float(self.pixel_size_um),
            "model_pixel_size_um": float(self.model_pixel_size_um),
            "threshold": float(self.threshold),
            "tta": self.tta,
            "energy_gate": self.energy_gate,
            "review_gate": self.review_gate,
            "count": self.count,
            "uncertain_count": self.uncertain_count,
            "tiles": {"total": int(self.tiles_total), "skipped": int(self.tiles_skipped)},
        }

    def to_feature_collection(self, decimals: int = 2) -> dict:
        """QuPath-importable FeatureCollection (level-0 px) with the collection properties of the contract."""
        return to_feature_collection(
            self.objects,
            object_type=self.object_type,
            model_name=self.model_name,
            properties=self.collection_properties(),
            decimals=decimals,
        )

    def review_rows(self) -> list[dict[str, Any]]:
        """One dict per object in review order (for tables and the server's review list)."""
        rows = []
        for obj in self.objects:
            cx, cy = obj.centroid
            rows.append({
                "rank": obj.rank, "class": obj.class_name, "energy": obj.mean_energy,
                "probability": obj.mean_probability, "review_score": obj.review_score, "area_um2": obj.area_um2,
                "agreement": obj.agreement, "reference_rank": obj.reference_rank, "x": cx, "y": cy, "id": obj.id,
            })
        return rows


def parse_geometry(geometry: BaseGeometry | dict | None) -> BaseGeometry | None:
    """A GeoJSON Polygon/MultiPolygon (or Feature with one) or shapely geometry → valid shapely geometry."""
    if geometry is None:
        return None
    if isinstance(geometry, dict):
        if geometry.get("type") == "Feature":
            geometry = geometry.get("geometry") or {}
        try:
            geometry = shapely.geometry.shape(geometry)
        except Exception as error:  # shapely raises several types for malformed input
            raise InvalidInputError(f"geometry is not valid GeoJSON: {error}") from None
    if not isinstance(geometry, BaseGeometry) or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInputError("geometry must be a GeoJSON Polygon or MultiPolygon in level-0 pixels")
    if geometry.is_empty or geometry.area <= 0:
        raise InvalidInputError("geometry is empty (zero area)")
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    return geometry


def resolve_region(slide, region=None, geometry: BaseGeometry | None = None) -> tuple[float, float, float, float]:
    """The level-0 region to analyse: ``region`` ∩ geometry bounds ∩ the slide's extent."""
    bx, by, bw, bh = slide.bounds
    x0, y0, x1, y1 = bx, by, bx + bw, by + bh
    if region is not None:
        try:
            rx, ry, rw, rh = (float(v) for v in region)
        except (TypeError, ValueError):
            raise InvalidInputError(f"region must be four numbers X,Y,W,H in level-0 px, got {region!r}") from None
        if not all(math.isfinite(v) for v in (rx, ry, rw, rh)) or rw <= 0 or rh <= 0:
            raise InvalidInputError(f"region width and height must be positive finite numbers, got {region!r}")
        x0, y0, x1, y1 = max(x0, rx), max(y0, ry), min(x1, rx + rw), min(y1, ry + rh)
    if geometry is not None:
        gx0, gy0, gx1, gy1 = geometry.bounds
        x0, y0, x1, y1 = max(x0, gx0), max(y0, gy0), min(x1, gx1), min(y1, gy1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidInputError(
            f"the requested region does not overlap the image (image extent x={bx}..{bx + bw}, y={by}..{by + bh} level-0 px)"
        )
    x0, y0 = math.floor(x0), math.floor(y0)
    return (float(x0), float(y0), float(math.ceil(x1) - x0), float(math.ceil(y1) - y0))


def apply_energy_gate(objects: list[DetectedObject], card, options: DetectionOptions, border: BaseGeometry | None = None,
                      level0_pixel_um: float = 1.0) -> dict[str, Any] | None:
    """Score objects with the card's review model (if any) and gate them (:func:`hubseg.gating.apply_gate`).

    ``border``: the analysed area in level-0 px, for the review score's distance-to-border feature.
    """
    review = card.review_model if isinstance(getattr(card, "review_model", None), dict) else None
    if review is not None:
        score_objects(objects, review, border, level0_pixel_um)
    return apply_gate(objects, card, options)


def mark_references(objects: list[DetectedObject], count: int) -> None:
    """Give the ``count`` most certain confident objects ``reference_rank`` 1..count (1 = most certain).

    Certainty is the review score where every object has one, else the mean negative energy (higher = surer).
    Objects the gate calls uncertain are never references: they are what the references are compared against.
    """
    for obj in objects:
        obj.reference_rank = None
    confident = [o for o in objects if not o.uncertain]
    if count <= 0 or not confident:
        return
    by_score = all(o.review_score is not None for o in confident)
    confident.sort(key=lambda o: (o.review_score if by_score else o.mean_energy, o.mean_energy), reverse=True)
    for rank, obj in enumerate(confident[:count], start=1):
        obj.reference_rank = rank


def _objects_from_maps(maps: PredictionMaps, card, options: DetectionOptions, threshold: float, geometry,
                       maps_callback) -> tuple[list, dict[str, float]]:
    """The maps' objects (:func:`extract_instances` with the options) and the timings so far; the caller
    closes the maps."""
    t0 = time.perf_counter()
    objects = extract_instances(
        maps,
        threshold=threshold,
        min_area_um2=options.min_area_um2,
        simplify_um=options.simplify_um,
        mask_geometry=geometry,
        band_rows=options.band_rows,
        split=split_options_for(card) if options.split_touching else None,
    )
    if maps_callback is not None:
        maps_callback(maps)
    timings = dict(maps.timings)
    timings["instances"] = time.perf_counter() - t0
    return objects, timings


def detect(
    slide,
    model,
    region=None,
    geometry: BaseGeometry | dict | None = None,
    options: DetectionOptions | None = None,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    maps_callback: Callable[[PredictionMaps], None] | None = None,
) -> DetectionResult:
    """Detect objects in ``region`` (level-0 x, y, w, h; default the whole slide), optionally only inside
    ``geometry`` (GeoJSON/shapely polygon in level-0 px), with a :class:`hubseg.models.LoadedModel`.

    ``maps_callback(maps)`` sees the probability/energy maps before they are closed (self-training derives its
    pixel targets from them); it must copy what it keeps (``maps.read_rows`` reads bands).
    """
    options = options or DetectionOptions()
    if isinstance(options, dict):
        options = DetectionOptions(**options)
    options.validate()
    card = model.card
    started = time.perf_counter()
    geometry = parse_geometry(geometry)
    region = resolve_region(slide, region, geometry)
    threshold = float(options.threshold if options.threshold is not None else card.threshold)
    maps = predict_maps(slide, model, region, options, progress=progress, should_cancel=should_cancel, geometry=geometry)
    try:
        objects, timings = _objects_from_maps(maps, card, options, threshold, geometry, maps_callback)
    finally:
        maps.close()
    if hasattr(model, "members"):  # an ensemble: how much its members agree on each object
        t0 = time.perf_counter()
        compute_agreement(slide, model, objects, maps.origin, maps.downsample, threshold, should_cancel)
        timings["agreement"] = time.perf_counter() - t0
    border = geometry if geometry is not None else shapely.box(region[0], region[1], region[0] + region[2], region[1] + region[3])
    gate = apply_energy_gate(objects, card, options, border, float(slide.pixel_size_um))
    mark_references(objects, int(options.references))
    timings["total"] = time.perf_counter() - started
    if progress:
        progress(maps.tiles_total, maps.tiles_total, f"{len(objects)} objects")
    return DetectionResult(
        objects=objects,
        model_name=card.name,
        model_version=int(card.version),
        region=region,
        pixel_size_um=float(slide.pixel_size_um),
        model_pixel_size_um=float(card.pixel_size_um),
        threshold=threshold,
        energy_gate={k: v for k, v in gate.items() if k != "kind"} if gate and gate["kind"] == "energy" else None,
        review_gate=gate if gate and gate["kind"] == "review score" else None,
        tiles_total=maps.tiles_total,
        tiles_skipped=maps.tiles_skipped,
        object_type=options.object_type,
        tta=options.tta,
        timings=timings,
    )


def detect_and_write(slide, model, geojson=None, overlay=None, *, region=None, geometry=None,
                     options: DetectionOptions | None = None, progress: ProgressFn | None = None,
                     should_cancel: CancelFn | None = None) -> tuple[DetectionResult, dict]:
    """The one detect → write path of every front end (CLI, demo, batch, project, server): :func:`detect`, the
    QuPath FeatureCollection, written atomically to ``geojson`` and the overlay picture to ``overlay`` when
    given. Returns ``(result, collection)``."""
    result = detect(slide, model, region=region, geometry=geometry, options=options, progress=progress,
                    should_cancel=should_cancel)
    collection = result.to_feature_collection()
    if geojson is not None:
        write_feature_collection(geojson, collection)
    if overlay is not None:
        render_overlay(slide, result, overlay)
    return result, collection


__all__ = ["DetectionOptions", "DetectionResult", "detect", "detect_and_write", "parse_geometry", "resolve_region", "apply_energy_gate",
           "mark_references"]
