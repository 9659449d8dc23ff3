"""Review-state rules for hubseg objects in a QuPath project (pure Python, no QuPath needed).

A *hubseg object* carries the metadata ``hubseg.model``. Its review state is the metadata
``hubseg.review`` (``pending|accepted|rejected|corrected``, ``docs/architecture.md``), refined by what the
user visibly did in QuPath:

- class ``Rejected`` means rejected whatever the metadata says (the extension may keep rejected objects
  as negatives by reclassifying them);
- a shape that no longer matches the fingerprint stamped at creation (``hubseg.shape``, computed as the
  QuPath extension does; objects stored by older versions may carry ``hubseg.geometry`` instead, which is
  still read) means the user edited it: corrected;
- a class other than the proposal classes (``Glomerulus``, ``Glomerulus (uncertain)``) or ``Rejected``
  means the user reclassified it: reviewed (corrected).

A new prediction may replace only hubseg objects that are pending AND provably unedited (their
fingerprint is present and matches). Everything else -- the user's own annotations, reviewed objects,
hubseg objects whose fingerprint is missing -- is never touched; new proposals that duplicate one of
those kept objects are dropped instead of being added again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import shapely
from shapely.geometry.base import BaseGeometry

from hubseg.project.store import NewObject, ProjectObject
from hubseg.vocabulary import (  # noqa: F401 (re-exported: the project package's names for them)
    ACCEPTED,
    CORRECTED,
    META_ENERGY,
    META_GEOMETRY,
    META_MODEL,
    META_REGION,
    META_REVIEW,
    META_SHAPE,
    PENDING,
    REJECTED,
    REVIEW_STATES,
)
from hubseg.vocabulary import CLASS_GLOMERULUS as GLOMERULUS_CLASS
from hubseg.vocabulary import CLASS_REJECTED as REJECTED_CLASS
from hubseg.vocabulary import CLASS_REVIEWED_REGION as REVIEWED_REGION_CLASS
from hubseg.vocabulary import CLASS_UNCERTAIN as UNCERTAIN_CLASS
from hubseg.vocabulary import FINGERPRINT_DECIMALS, FINGERPRINT_ENCODING, FINGERPRINT_HASH, FINGERPRINT_HEX_CHARS

PROPOSAL_CLASSES = (GLOMERULUS_CLASS, UNCERTAIN_CLASS)
USER = "user"  # not a hubseg object

# New proposals overlapping a kept object by this share of their own area are duplicates.
DUPLICATE_OVERLAP = 0.5
_QUANTUM = Decimal(1).scaleb(-FINGERPRINT_DECIMALS)  # a fingerprint's coordinate rounding step


def legacy_geometry_fingerprint(geometry: BaseGeometry) -> str:
    """The fingerprint older project batches stored as ``hubseg.geometry`` (read only, never written now):
    SHA-256 of the normalised WKB at 1/1000 px, so vertex order and ring orientation do not matter."""
    normalized = shapely.normalize(shapely.set_precision(geometry, 10.0**-3))
    digest = hashlib.sha256(shapely.to_wkb(normalized, output_dimension=2, byte_order=1)).hexdigest()
    return f"sha256:{digest[:24]}"


def _half_up(value: float) -> str:
    # Java's String.format("%.2f") rounds HALF_UP on the exact binary value; Python's "%.2f" rounds ties
    # to even, which differs on float32 values such as 10.125, so use Decimal.
    return str(Decimal(float(value)).quantize(_QUANTUM, rounding=ROUND_HALF_UP))


def _coordinates_text(element, out: list[str]) -> None:
    if isinstance(element, (list, tuple)):
        out.append("[")
        for child in element:
            _coordinates_text(child, out)
            out.append(",")
        out.append("]")
    elif isinstance(element, (int, float)):
        out.append(_half_up(element))


def shape_fingerprint(geometry: BaseGeometry) -> str:
    """The fingerprint stored as ``hubseg.shape`` (parameters in ``hubseg.vocabulary``, ``FINGERPRINT_*``;
    the QuPath extension's ``Geo.fingerprint`` computes the same): a hash of the GeoJSON type and
    coordinates. Vertex order matters, as in QuPath's own GeoJSON."""
    geojson = json.loads(shapely.to_geojson(geometry))
    parts = [geojson.get("type", "?"), ":"]
    _coordinates_text(geojson.get("coordinates"), parts)
    digest = hashlib.new(FINGERPRINT_HASH.replace("-", "").lower(), "".join(parts).encode(FINGERPRINT_ENCODING))
    return digest.hexdigest()[:FINGERPRINT_HEX_CHARS]


def stamp_geometry(metadata: dict[str, str], geometry: BaseGeometry) -> dict[str, str]:
    """Return ``metadata`` plus the fingerprint of ``geometry`` (call with the shape as stored), so that a
    later edit is noticed here and in the QuPath extension."""
    return {**metadata, META_SHAPE: shape_fingerprint(geometry)}


def is_hubseg_object(obj: ProjectObject) -> bool:
    return META_MODEL in obj.metadata


def is_declared_region(obj: ProjectObject) -> bool:
    """A user annotation of class ``Reviewed region``: its labels are exhaustive by the user's word."""
    return (
        obj.object_type == "annotation"
        and not is_hubseg_object(obj)
        and (obj.class_name or "").strip().lower() == REVIEWED_REGION_CLASS.lower()
    )


def is_detection_region(obj: ProjectObject) -> bool:
    """A user annotation that detection ran in (metadata ``hubseg.region``, set by the QuPath extension)."""
    return obj.object_type == "annotation" and not is_hubseg_object(obj) and bool(obj.metadata.get(META_REGION))


def reviewed_regions(objects: list[ProjectObject]) -> list[ProjectObject]:
    """Regions whose labels count as exhaustive: every ``Reviewed region`` annotation, and every detection
    region in which no hubseg proposal is still pending (the user went through all of them)."""
    pending_points = [
        obj.geometry.representative_point()
        for obj in objects
        if is_hubseg_object(obj) and review_state(obj) == PENDING and obj.geometry is not None
    ]
    regions = []
    for obj in objects:
        if is_declared_region(obj):
            regions.append(obj)
        elif is_detection_region(obj) and not is_declared_region(obj):
            if not any(obj.geometry.contains(point) for point in pending_points):
                regions.append(obj)
    return regions


def is_region_annotation(obj: ProjectObject) -> bool:
    """A region annotation (declared or detection region); never itself a label object."""
    return is_declared_region(obj) or is_detection_region(obj)


def is_edited(obj: ProjectObject) -> bool | None:
    """True if a hubseg object's shape differs from its creation fingerprint; None if it has none."""
    stamped = obj.metadata.get(META_SHAPE)
    if stamped:
        return shape_fingerprint(obj.geometry) != stamped
    stamped = obj.metadata.get(META_GEOMETRY)
    if stamped:  # stored by an older project batch
        return legacy_geometry_fingerprint(obj.geometry) != stamped
    return None


def review_state(obj: ProjectObject) -> str:
    """``user`` for non-hubseg objects, else the effective ``pending|accepted|rejected|corrected``."""
    if not is_hubseg_object(obj):
        return USER
    stored = obj.metadata.get(META_REVIEW, PENDING).strip().lower()
    if obj.class_name == REJECTED_CLASS or stored == REJECTED:
        return REJECTED
    if stored == CORRECTED or is_edited(obj):
        return CORRECTED
    if obj.class_name not in PROPOSAL_CLASSES:
        return CORRECTED  # reclassified (or class removed) by the user: reviewed, never replaced
    if stored == ACCEPTED:
        return ACCEPTED
    return PENDING


def is_replaceable(obj: ProjectObject) -> bool:
    """Only a pending hubseg object that is provably unedited may be replaced by a new prediction."""
    return is_hubseg_object(obj) and review_state(obj) == PENDING and is_edited(obj) is False


def _is_label_object(obj: ProjectObject) -> bool:
    """Objects that a new proposal must not duplicate (regions and other user annotations are not)."""
    return is_hubseg_object(obj) or obj.class_name in (*PROPOSAL_CLASSES, REJECTED_CLASS)


@dataclass
class ReplacementPlan:
    remove_keys: list[str] = field(default_factory=list)
    add: list[NewObject] = field(default_factory=list)
    kept: int = 0  # hubseg/user label objects left untouched
    dropped_duplicates: int = 0  # new proposals not added because a kept object covers them


def plan_replacement(existing: list[ProjectObject], proposals: list[NewObject]) -> ReplacementPlan:
    """Decide what a new prediction removes and adds in one image (see the module docstring)."""
    plan = ReplacementPlan()
    kept_geometries = []
    for obj in existing:
        if is_replaceable(obj):
            plan.remove_keys.append(obj.key)
        elif _is_label_object(obj):
            plan.kept += 1
            if obj.geometry is not None and not obj.geometry.is_empty:
                kept_geometries.append(obj.geometry)
    tree = shapely.STRtree(kept_geometries) if kept_geometries else None
    for proposal in proposals:
        if tree is not None and _covered(proposal.geometry, tree, kept_geometries):
            plan.dropped_duplicates += 1
            continue
        plan.add.append(proposal)
    return plan


def _covered(geometry: BaseGeometry, tree: shapely.STRtree, geometries: list[BaseGeometry]) -> bool:
    area = geometry.area
    if area <= 0:
        return False
    for index in tree.query(geometry):
        other = geometries[int(index)]
        if not other.is_valid:
            other = shapely.make_valid(other)
        if geometry.intersection(other).area >= DUPLICATE_OVERLAP * area:
            return True
    return False


# regions = reviewed regions (see reviewed_regions)
STATUS_COLUMNS = ("objects", "pending", "accepted", "rejected", "corrected", "reviewed", "user_glomeruli", "regions")


def status_counts(objects: list[ProjectObject]) -> dict[str, int]:
    """Per-image counts: hubseg objects by state, reviewed total, user-drawn glomeruli, reviewed regions."""
    states = Counter(review_state(obj) for obj in objects)
    counts = {name: 0 for name in STATUS_COLUMNS}
    for state in REVIEW_STATES:
        counts[state] = states.get(state, 0)
    counts["objects"] = sum(counts[state] for state in REVIEW_STATES)
    counts["reviewed"] = counts[ACCEPTED] + counts[REJECTED] + counts[CORRECTED]
    counts["user_glomeruli"] = sum(
        1 for obj in objects if not is_hubseg_object(obj) and obj.class_name == GLOMERULUS_CLASS
    )
    counts["regions"] = len(reviewed_regions(objects))
    return counts
