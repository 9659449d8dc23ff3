"""Review-state rules for hubseg objects in a QuPath project (pure Python, no QuPath needed).

A *hubseg object* carries the metadata ``hubseg.model``. Its review state is the metadata
``hubseg.review`` (``pending|accepted|rejected|corrected``, ``docs/architecture.md``), refined by what the
user visibly did in QuPath:

- class ``Rejected`` means rejected whatever the metadata says (the extension may keep rejected objects
  as negatives by reclassifying them);
- a shape that no longer matches the fingerprint stamped at creation (``hubseg.geometry``) means the user
  edited it: corrected;
- a class other than ``Glomerulus``/``Rejected`` means the user reclassified it: reviewed (corrected).

A new prediction may replace only hubseg objects that are pending AND provably unedited (their
fingerprint is present and matches). Everything else -- the user's own annotations, reviewed objects,
hubseg objects whose fingerprint is missing -- is never touched; new proposals that duplicate one of
those kept objects are dropped instead of being added again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry

from hubseg.project.store import NewObject, ProjectObject

META_MODEL = "hubseg.model"
META_REVIEW = "hubseg.review"
META_ENERGY = "hubseg.energy"
META_GEOMETRY = "hubseg.geometry"  # fingerprint of the shape as first stored
META_REGION = "hubseg.region"  # "reviewed" on an annotation marks a region whose labels are exhaustive

GLOMERULUS_CLASS = "Glomerulus"
REJECTED_CLASS = "Rejected"
REVIEWED_REGION_CLASS = "Reviewed region"

PENDING, ACCEPTED, REJECTED, CORRECTED = "pending", "accepted", "rejected", "corrected"
REVIEW_STATES = (PENDING, ACCEPTED, REJECTED, CORRECTED)
USER = "user"  # not a hubseg object

# New proposals overlapping a kept object by this share of their own area are duplicates.
DUPLICATE_OVERLAP = 0.5
# Coordinates are rounded before hashing: QuPath stores polygon vertices as float32, so the hash is
# always taken of the shape as read back from the project, and rounding only absorbs noise below 1/1000 px.
_FINGERPRINT_DECIMALS = 3


def geometry_fingerprint(geometry: BaseGeometry) -> str:
    """A short stable hash of a shape (vertex order and ring orientation normalised)."""
    normalized = shapely.normalize(shapely.set_precision(geometry, 10.0**-_FINGERPRINT_DECIMALS))
    digest = hashlib.sha256(shapely.to_wkb(normalized, output_dimension=2, byte_order=1)).hexdigest()
    return f"sha256:{digest[:24]}"


def stamp_geometry(metadata: dict[str, str], geometry: BaseGeometry) -> dict[str, str]:
    """Return ``metadata`` plus the fingerprint of ``geometry`` (call with the shape as stored)."""
    return {**metadata, META_GEOMETRY: geometry_fingerprint(geometry)}


def is_hubseg_object(obj: ProjectObject) -> bool:
    return META_MODEL in obj.metadata


def is_reviewed_region(obj: ProjectObject) -> bool:
    """An annotation marking a region whose labels the user declares exhaustive."""
    if obj.object_type != "annotation" or is_hubseg_object(obj):
        return False
    return (obj.class_name or "").strip().lower() == REVIEWED_REGION_CLASS.lower() or (
        obj.metadata.get(META_REGION, "").lower() == "reviewed"
    )


def is_edited(obj: ProjectObject) -> bool | None:
    """True if a hubseg object's shape differs from its creation fingerprint; None if it has none."""
    stamped = obj.metadata.get(META_GEOMETRY)
    if not stamped:
        return None
    return geometry_fingerprint(obj.geometry) != stamped


def review_state(obj: ProjectObject) -> str:
    """``user`` for non-hubseg objects, else the effective ``pending|accepted|rejected|corrected``."""
    if not is_hubseg_object(obj):
        return USER
    stored = obj.metadata.get(META_REVIEW, PENDING).strip().lower()
    if obj.class_name == REJECTED_CLASS or stored == REJECTED:
        return REJECTED
    if stored == CORRECTED or is_edited(obj):
        return CORRECTED
    if obj.class_name != GLOMERULUS_CLASS:
        return CORRECTED  # reclassified (or class removed) by the user: reviewed, never replaced
    if stored == ACCEPTED:
        return ACCEPTED
    return PENDING


def is_replaceable(obj: ProjectObject) -> bool:
    """Only a pending hubseg object that is provably unedited may be replaced by a new prediction."""
    return is_hubseg_object(obj) and review_state(obj) == PENDING and is_edited(obj) is False


def _is_label_object(obj: ProjectObject) -> bool:
    """Objects that a new proposal must not duplicate (regions and other user annotations are not)."""
    return is_hubseg_object(obj) or obj.class_name in (GLOMERULUS_CLASS, REJECTED_CLASS)


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
    counts["regions"] = sum(1 for obj in objects if is_reviewed_region(obj))
    return counts
