"""QuPath GeoJSON (0.5–0.7): detected objects → FeatureCollection, and QuPath features → shapely geometries.

QuPath (``qupath-core`` ``io/QuPathTypeAdapters.java``) reads a ``Feature`` with a UUID string ``id``, a
``geometry`` in level-0 pixels, and ``properties``: ``objectType`` (``annotation``/``detection``),
``classification {name, color [r, g, b]}``, ``isLocked``, ``measurements`` (object name → number) and
``metadata`` (string → string, QuPath ≥ 0.5). Property and measurement names are fixed in
``docs/architecture.md`` ("GeoJSON properties").
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, Iterable

import shapely.geometry
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from hubseg.errors import InvalidInputError
from hubseg.vocabulary import (
    MEASUREMENT_AGREEMENT,
    MEASUREMENT_AREA,
    MEASUREMENT_ENERGY,
    MEASUREMENT_GATE,
    MEASUREMENT_PERIMETER,
    MEASUREMENT_PROBABILITY,
    MEASUREMENT_RANK,
    MEASUREMENT_REFERENCE_RANK,
    MEASUREMENT_REVIEW_SCORE,
)
from hubseg.vocabulary import META_ENERGY as METADATA_ENERGY
from hubseg.vocabulary import META_MODEL as METADATA_MODEL
from hubseg.vocabulary import META_REVIEW as METADATA_REVIEW

OBJECT_TYPES = ("annotation", "detection")



def _round_coords(value, decimals: int):
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (int, float)):
            return [round(float(v), decimals) for v in value]
        return [_round_coords(v, decimals) for v in value]
    return value


def geometry_to_geojson(geometry: BaseGeometry, decimals: int = 2) -> dict:
    """A shapely geometry as a GeoJSON geometry dict (lists, coordinates rounded)."""
    mapped = mapping(geometry)
    if mapped["type"] == "GeometryCollection":
        return {"type": "GeometryCollection", "geometries": [geometry_to_geojson(g, decimals) for g in geometry.geoms]}
    return {"type": mapped["type"], "coordinates": _round_coords(mapped["coordinates"], decimals)}


def _number(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"measurement values must be finite numbers, got {value}")
    return value


def object_to_feature(
    obj,
    *,
    object_type: str = "annotation",
    model_name: str | None = None,
    locked: bool = False,
    decimals: int = 2,
) -> dict:
    """One :class:`hubseg.instances.DetectedObject` as a QuPath Feature."""
    if object_type not in OBJECT_TYPES:
        raise InvalidInputError(f"object type must be one of {', '.join(OBJECT_TYPES)}; got {object_type!r}")
    measurements = {
        MEASUREMENT_ENERGY: round(_number(obj.mean_energy), 6),
        MEASUREMENT_PROBABILITY: round(_number(obj.mean_probability), 6),
        MEASUREMENT_AREA: round(_number(obj.area_um2), 3),
        MEASUREMENT_PERIMETER: round(_number(obj.perimeter_um), 3),
        MEASUREMENT_RANK: int(obj.rank),
    }
    if getattr(obj, "review_score", None) is not None:
        measurements[MEASUREMENT_REVIEW_SCORE] = round(_number(obj.review_score), 6)
    if getattr(obj, "agreement", None) is not None:
        measurements[MEASUREMENT_AGREEMENT] = round(_number(obj.agreement), 6)
    if getattr(obj, "reference_rank", None) is not None:
        measurements[MEASUREMENT_REFERENCE_RANK] = int(obj.reference_rank)
    if obj.energy_gate is not None:
        measurements[MEASUREMENT_GATE] = round(_number(obj.energy_gate), 6)
    metadata = {METADATA_REVIEW: "pending", METADATA_ENERGY: f"{obj.mean_energy:.6g}"}
    if model_name:
        metadata[METADATA_MODEL] = str(model_name)
    return {
        "type": "Feature",
        "id": str(obj.id or uuid.uuid4()),
        "geometry": geometry_to_geojson(obj.geometry, decimals),
        "properties": {
            "objectType": object_type,
            "classification": {"name": obj.class_name, "color": [int(c) for c in obj.class_color]},
            "isLocked": bool(locked),
            "measurements": measurements,
            "metadata": metadata,
        },
    }


def to_feature_collection(
    objects: Iterable,
    *,
    object_type: str = "annotation",
    model_name: str | None = None,
    locked: bool = False,
    properties: dict[str, Any] | None = None,
    decimals: int = 2,
) -> dict:
    """A GeoJSON FeatureCollection QuPath imports (File → Import objects, or drag & drop).

    ``properties`` become the collection's ``properties`` (QuPath ignores them; the server and CLI use
    them for model, region, pixel size, gate, count). Objects keep their order (the review order).
    """
    features = [
        object_to_feature(o, object_type=object_type, model_name=model_name, locked=locked, decimals=decimals)
        for o in objects
    ]
    collection = {"type": "FeatureCollection", "features": features}
    if properties is not None:
        collection["properties"] = dict(properties)
    return collection


def write_feature_collection(path, collection: dict):
    """Write a FeatureCollection as UTF-8 JSON atomically (what ``hubseg detect`` and ``hubseg batch`` write)."""
    from hubseg.paths import atomic_write_text

    return atomic_write_text(path, json.dumps(collection, ensure_ascii=False))


def _class_name(classification: Any) -> str | None:
    if classification is None:
        return None
    if isinstance(classification, str):
        return classification
    if isinstance(classification, dict):
        if classification.get("name"):
            return str(classification["name"])
        names = classification.get("names")
        if names:
            return ": ".join(str(n) for n in names)  # QuPath derived classes
    return None


def features_to_geometries(collection: dict | list | str) -> list[tuple[BaseGeometry, str | None, dict]]:
    """(shapely geometry, class name or None, properties) for every feature with a geometry.

    Accepts a FeatureCollection, a list of Features (QuPath's "export as array"), a single Feature, or
    their JSON text.
    """
    if isinstance(collection, (str, bytes)):
        try:
            collection = json.loads(collection)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"not valid GeoJSON text: {error}") from None
    if isinstance(collection, dict) and collection.get("type") == "FeatureCollection":
        features = collection.get("features") or []
    elif isinstance(collection, dict) and collection.get("type") == "Feature":
        features = [collection]
    elif isinstance(collection, list):
        features = collection
    else:
        raise InvalidInputError("expected a GeoJSON FeatureCollection, a Feature, or a list of Features")
    result = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InvalidInputError(f"feature {index} is not a GeoJSON Feature (needs \"type\": \"Feature\")")
        geometry = feature.get("geometry")
        if not geometry:
            continue
        try:
            shape = shapely.geometry.shape(geometry)
        except Exception as error:  # shapely raises several types for malformed input
            raise InvalidInputError(f"feature {index} has an invalid geometry: {error}") from None
        properties = feature.get("properties") or {}
        result.append((shape, _class_name(properties.get("classification")), properties))
    return result
