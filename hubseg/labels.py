"""Label sets (``hubseg-labelset/1``): reviewed regions + positive/negative objects on one image.

The format (docs/architecture.md) is what QuPath exports, ``POST /v1/labels`` accepts and ``hubseg train``
learns from. Inside a reviewed region everything not covered by a ``Glomerulus`` feature is background;
``Rejected`` features are explicit negatives (hard examples); outside the regions nothing is known.
Validation errors name the offending field (``features.features[3].geometry.type``) and say what is valid.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely.geometry
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from hubseg.errors import InvalidInputError
from hubseg.paths import read_json_file
from hubseg.vocabulary import CLASS_GLOMERULUS, CLASS_REJECTED, CLASS_UNCERTAIN

LABELSET_FORMAT = "hubseg-labelset/1"
POSITIVE_CLASS = CLASS_GLOMERULUS
NEGATIVE_CLASS = CLASS_REJECTED
# Objects still marked uncertain inside a reviewed region were not decided: their pixels are ignored.
IGNORED_CLASSES = (CLASS_UNCERTAIN,)
SOURCES = ("qupath", "project", "api")
_POLYGON_TYPES = ("Polygon", "MultiPolygon")
TOP_LEVEL_KEYS = ("format", "image", "pixel_size_um", "regions", "features", "model", "source", "created")


def _fail(field_name: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"label set field '{field_name}': {message}")


def _check_coordinates(coords: Any, where: str, depth: int) -> None:
    """Polygon: depth 3 (rings → points → xy); MultiPolygon: depth 4."""
    if depth == 1:
        if not isinstance(coords, (list, tuple)) or len(coords) < 2:
            raise _fail(where, "each position must be [x, y] (level-0 pixels)")
        for value in coords[:2]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _fail(where, f"coordinates must be finite numbers, got {value!r}")
        return
    if not isinstance(coords, (list, tuple)) or not coords:
        raise _fail(where, "must be a non-empty array")
    for index, item in enumerate(coords):
        _check_coordinates(item, f"{where}[{index}]", depth - 1)


def parse_geometry(value: Any, where: str) -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon (or a Feature holding one) → valid shapely geometry in level-0 px."""
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
        where = f"{where}.geometry"
    if not isinstance(value, dict):
        raise _fail(where, "must be a GeoJSON Polygon or MultiPolygon object")
    kind = value.get("type")
    if kind not in _POLYGON_TYPES:
        raise _fail(f"{where}.type", f"must be one of {', '.join(_POLYGON_TYPES)}, got {kind!r}")
    coords = value.get("coordinates")
    _check_coordinates(coords, f"{where}.coordinates", 3 if kind == "Polygon" else 4)
    try:
        geometry = shapely.geometry.shape(value)
    except Exception as error:  # shapely raises several types for malformed rings
        raise _fail(where, f"is not a valid polygon ({error})") from None
    if not geometry.is_valid:
        geometry = geometry.buffer(0)  # repair self-intersections drawn by hand
    if geometry.is_empty or geometry.area <= 0:
        raise _fail(where, "has zero area (rings need at least 3 distinct points)")
    return geometry


def _classification_name(feature: dict) -> str | None:
    props = feature.get("properties") or {}
    classification = props.get("classification")
    if isinstance(classification, dict):
        return classification.get("name")
    if isinstance(classification, str):
        return classification
    return props.get("className")


@dataclass
class LabelSet:
    """A validated label set; geometries are shapely objects in level-0 pixels of the image."""

    pixel_size_um: float
    regions: list[BaseGeometry]
    positives: list[BaseGeometry]
    negatives: list[BaseGeometry] = field(default_factory=list)
    ignored: list[BaseGeometry] = field(default_factory=list)
    image_path: str | None = None
    upload_id: str | None = None
    model: str | None = None
    source: str | None = None
    created: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def region_union(self) -> BaseGeometry:
        return unary_union(self.regions)

    def summary(self) -> dict[str, Any]:
        return {
            "image": self.image_path or self.upload_id,
            "pixel_size_um": self.pixel_size_um,
            "regions": len(self.regions),
            "positives": len(self.positives),
            "negatives": len(self.negatives),
            "reviewed_area_um2": round(self.region_union.area * self.pixel_size_um**2, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """The label set as JSON-ready ``hubseg-labelset/1`` dict (the validated input as given)."""
        return json.loads(json.dumps(self.raw))

    def resolve_image(self, base_dir: str | os.PathLike | None = None) -> Path:
        """The image path (relative paths resolved against ``base_dir``); upload ids need the server."""
        if not self.image_path:
            raise InvalidInputError(
                f"label set refers to upload {self.upload_id!r}, which only the server can resolve; "
                "use a label set with image.path for hubseg train"
            )
        path = Path(self.image_path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise InvalidInputError(f"label set field 'image.path': file not found: {path}")
        return path


def _parse_features(features: Any) -> tuple[list[BaseGeometry], list[BaseGeometry], list[BaseGeometry]]:
    """The label set's ``features``: (positives, negatives, ignored) geometries, each feature checked."""
    if not isinstance(features, dict) or features.get("type") != "FeatureCollection":
        raise _fail("features", 'must be a GeoJSON FeatureCollection ({"type": "FeatureCollection", ...})')
    feature_list = features.get("features")
    if not isinstance(feature_list, list):
        raise _fail("features.features", "must be an array of GeoJSON Features")
    positives: list[BaseGeometry] = []
    negatives: list[BaseGeometry] = []
    ignored: list[BaseGeometry] = []
    for index, feature in enumerate(feature_list):
        where = f"features.features[{index}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise _fail(where, 'must be a GeoJSON Feature ({"type": "Feature", "geometry": ..., "properties": ...})')
        name = _classification_name(feature)
        if name not in (POSITIVE_CLASS, NEGATIVE_CLASS, *IGNORED_CLASSES):
            raise _fail(
                f"{where}.properties.classification.name",
                f"must be {POSITIVE_CLASS!r} (positive), {NEGATIVE_CLASS!r} (explicit negative) or "
                f"{IGNORED_CLASSES[0]!r} (undecided, ignored), got {name!r}",
            )
        geometry = parse_geometry(feature.get("geometry"), f"{where}.geometry")
        (positives if name == POSITIVE_CLASS else negatives if name == NEGATIVE_CLASS else ignored).append(geometry)
    return positives, negatives, ignored


def validate_label_set(data: Any) -> LabelSet:
    """Check a label-set dict field by field; returns a :class:`LabelSet` or raises ``InvalidInputError``."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"a label set must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise InvalidInputError(
            f"unknown label set key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(TOP_LEVEL_KEYS)}"
        )
    if data.get("format") != LABELSET_FORMAT:
        raise _fail("format", f"must be {LABELSET_FORMAT!r}, got {data.get('format')!r}")

    image = data.get("image")
    if not isinstance(image, dict) or (("path" in image) == ("upload_id" in image)):
        raise _fail("image", 'must be {"path": "/abs/slide.tif"} or {"upload_id": "..."} (exactly one)')
    for key in ("path", "upload_id"):
        if key in image and (not isinstance(image[key], str) or not image[key].strip()):
            raise _fail(f"image.{key}", "must be a non-empty string")

    pixel_size = data.get("pixel_size_um")
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float)) or not (
        math.isfinite(pixel_size) and 0 < pixel_size <= 100
    ):
        raise _fail("pixel_size_um", f"must be a number of µm per level-0 pixel in (0, 100], got {pixel_size!r}")

    regions_raw = data.get("regions")
    if not isinstance(regions_raw, list) or not regions_raw:
        raise _fail("regions", "must be a non-empty array of GeoJSON Polygon/MultiPolygon (the reviewed areas)")
    regions = [parse_geometry(region, f"regions[{i}]") for i, region in enumerate(regions_raw)]

    positives, negatives, ignored = _parse_features(data.get("features"))

    for key in ("model", "created"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _fail(key, "must be a string when given")
    source = data.get("source")
    if source is not None and source not in SOURCES:
        raise _fail("source", f"must be one of {', '.join(SOURCES)}, got {source!r}")

    return LabelSet(
        pixel_size_um=float(pixel_size),
        regions=regions,
        positives=positives,
        negatives=negatives,
        ignored=ignored,
        image_path=image.get("path"),
        upload_id=image.get("upload_id"),
        model=data.get("model"),
        source=source,
        created=data.get("created"),
        raw=data,
    )


def load_label_set(path: str | os.PathLike) -> LabelSet:
    """Read and validate a label-set JSON file."""
    source = Path(path)
    labels = validate_label_set(read_json_file(source, "label set"))
    if labels.image_path and not Path(labels.image_path).is_absolute():
        # relative image paths are relative to the label-set file
        labels.image_path = str((source.parent / labels.image_path).resolve())
    return labels
