"""Build ``hubseg-labelset/1`` documents (``docs/architecture.md``) from one image's objects.

Rules (same meaning as the QuPath extension's export and ``POST /v1/labels``):

- ``regions``: ``review.reviewed_regions``: annotations of class ``Reviewed region``, and detection
  regions (metadata ``hubseg.region``) with no pending proposal left; inside them everything not
  covered by a ``Glomerulus`` feature is background.
- positives (class ``Glomerulus``): accepted and corrected proposals that are still of a proposal class
  (``Glomerulus`` or ``Glomerulus (uncertain)``), the user's own ``Glomerulus`` objects, and pending
  ``Glomerulus`` proposals inside a ``Reviewed region`` (the user declared that region's labels exhaustive
  and left the object standing); pending ``Glomerulus (uncertain)`` ones there stay undecided (that class
  is ignored in training), as in the QuPath extension's export.
- negatives (class ``Rejected``): rejected hubseg objects and the user's own ``Rejected`` objects.

A reviewed object outside every reviewed region brings its own footprint as a region (the format keeps
all labels inside regions). An image with no region and no reviewed or user-drawn object yields none.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import shapely

from hubseg.project import review
from hubseg.project.store import ProjectObject

LABELSET_FORMAT = "hubseg-labelset/1"
GLOMERULUS_COLOR = [0, 200, 0]
REJECTED_COLOR = [160, 160, 160]
UNCERTAIN_COLOR = [255, 140, 0]
_COLORS = {review.GLOMERULUS_CLASS: GLOMERULUS_COLOR, review.REJECTED_CLASS: REJECTED_COLOR,
           review.UNCERTAIN_CLASS: UNCERTAIN_COLOR}


def mapping(geometry) -> dict[str, Any]:
    """GeoJSON geometry with plain lists (JSON-ready, as the label-set validator and the server see it);
    invalid shapes (self-intersections drawn in QuPath) are repaired to their polygonal part."""
    if not geometry.is_valid:
        repaired = shapely.make_valid(geometry)
        parts = [g for g in getattr(repaired, "geoms", [repaired]) if g.geom_type in ("Polygon", "MultiPolygon")]
        geometry = shapely.union_all(parts) if parts else geometry
    return json.loads(shapely.to_geojson(geometry))


def _feature(obj: ProjectObject, class_name: str, color: list[int], state: str) -> dict[str, Any]:
    private = (review.META_GEOMETRY, review.META_SHAPE, review.META_REGION)
    metadata = {k: v for k, v in obj.metadata.items() if k.startswith("hubseg.") and k not in private}
    if review.is_hubseg_object(obj):
        metadata[review.META_REVIEW] = state
    properties: dict[str, Any] = {
        "objectType": "annotation",
        "classification": {"name": class_name, "color": list(color)},
        "isLocked": False,
    }
    if obj.measurements:
        properties["measurements"] = dict(obj.measurements)
    if metadata:
        properties["metadata"] = metadata
    return {"type": "Feature", "id": obj.key, "geometry": mapping(obj.geometry), "properties": properties}


def _inside(region_union, obj: ProjectObject) -> bool:
    return region_union is not None and region_union.contains(obj.geometry.representative_point())


def _label(obj: ProjectObject, inside: bool) -> tuple[str, str] | None:
    """The class and review state an object has in the label set, or None when it is left out."""
    state = review.review_state(obj)
    if state == review.USER:
        # the user's own "not sure" (uncertain) inside a region: its pixels are ignored, never background
        if obj.class_name in (review.GLOMERULUS_CLASS, review.REJECTED_CLASS) or (
                obj.class_name == review.UNCERTAIN_CLASS and inside):
            return obj.class_name, state
        return None
    if state == review.REJECTED:
        return review.REJECTED_CLASS, state
    if state in (review.ACCEPTED, review.CORRECTED):
        # reclassified to something else: neither positive nor negative
        return (review.GLOMERULUS_CLASS, state) if obj.class_name in review.PROPOSAL_CLASSES else None
    if not inside:
        return None
    if obj.class_name == review.UNCERTAIN_CLASS:  # left undecided: its pixels are ignored in training
        return review.UNCERTAIN_CLASS, review.PENDING
    return review.GLOMERULUS_CLASS, review.ACCEPTED


def build_label_set(
    objects: list[ProjectObject],
    *,
    image_path: str | Path,
    pixel_size_um: float | Callable[[], float],
    source: str = "project",
    created: str | None = None,
) -> dict[str, Any] | None:
    """The label set of one image, or None when the user has reviewed nothing in it.

    ``pixel_size_um`` may be a function, called only when there is a label set to write (finding the pixel
    size may mean opening the image, which need not exist for an image nobody reviewed)."""
    regions = [obj.geometry for obj in review.reviewed_regions(objects)]
    region_union = shapely.union_all(regions) if regions else None
    features: list[dict[str, Any]] = []
    labelled: list[ProjectObject] = []  # the object behind each feature
    models: Counter[str] = Counter()
    for obj in objects:
        if review.is_region_annotation(obj) or obj.geometry is None or obj.geometry.is_empty:
            continue
        label = _label(obj, _inside(region_union, obj))
        if label is None:
            continue
        class_name, state = label
        features.append(_feature(obj, class_name, _COLORS[class_name], state))
        labelled.append(obj)
        if review.is_hubseg_object(obj):
            models[obj.metadata.get(review.META_MODEL, "")] += 1
    # The format needs every label inside a region ("outside the regions nothing is known"). A reviewed
    # object outside any reviewed region vouches for its own footprint only, so that becomes its region.
    for feature, obj in zip(features, labelled):
        if not _inside(region_union, obj):
            regions.append(obj.geometry)
    if not regions:
        return None
    label_set: dict[str, Any] = {
        "format": LABELSET_FORMAT,
        "image": {"path": str(Path(image_path).resolve())},
        "pixel_size_um": float(pixel_size_um() if callable(pixel_size_um) else pixel_size_um),
        "regions": [mapping(region) for region in regions],
        "features": {"type": "FeatureCollection", "features": features},
        "source": source,
        "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    models.pop("", None)
    if models:
        label_set["model"] = models.most_common(1)[0][0]
    validate(label_set)
    return label_set


def validate(label_set: dict[str, Any]) -> None:
    """Check a label set with the library's validator, the same one the server applies."""
    from hubseg.labels import validate_label_set

    validate_label_set(label_set)
