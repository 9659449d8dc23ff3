"""Review-state rules and the selection of objects a new prediction may replace (no QuPath needed)."""

from __future__ import annotations

import shapely
from shapely.geometry import Polygon, box

from hubseg.project import review
from hubseg.project.store import NewObject, ProjectObject

from tests.support.fakes import float32_roundtrip


def hubseg_obj(key, geometry, state=None, class_name="Glomerulus", stamp=True, **metadata):
    meta = {review.META_MODEL: "m-v1", review.META_REVIEW: state or "pending", **metadata}
    stored = float32_roundtrip(geometry)
    if stamp:
        meta = review.stamp_geometry(meta, stored)
    return ProjectObject(key, stored, class_name, "annotation", meta, {"hubseg energy": 1.0})


def user_obj(key, geometry, class_name="Glomerulus", **metadata):
    return ProjectObject(key, geometry, class_name, "annotation", dict(metadata), {})


def test_legacy_fingerprint_ignores_vertex_order_and_orientation_but_not_shape():
    square = Polygon([(10.25, 10), (50, 10), (50, 60), (10.25, 60)])
    rotated_start = Polygon([(50, 60), (10.25, 60), (10.25, 10), (50, 10)])
    reversed_ring = Polygon(list(square.exterior.coords)[::-1])
    assert review.legacy_geometry_fingerprint(square) == review.legacy_geometry_fingerprint(rotated_start)
    assert review.legacy_geometry_fingerprint(square) == review.legacy_geometry_fingerprint(reversed_ring)
    moved = shapely.affinity.translate(square, xoff=1.0)
    assert review.legacy_geometry_fingerprint(square) != review.legacy_geometry_fingerprint(moved)
    stored = float32_roundtrip(Polygon([(12345.678, 0.1), (12400.9, 0.1), (12400.9, 90.3)]))
    assert review.legacy_geometry_fingerprint(stored) == review.legacy_geometry_fingerprint(float32_roundtrip(stored))


def test_review_states_follow_metadata_class_and_edits():
    shape = box(0, 0, 40, 40)
    assert review.review_state(user_obj("u", shape)) == review.USER
    assert review.review_state(hubseg_obj("p", shape)) == review.PENDING
    assert review.review_state(hubseg_obj("a", shape, "accepted")) == review.ACCEPTED
    assert review.review_state(hubseg_obj("r", shape, "rejected")) == review.REJECTED
    assert review.review_state(hubseg_obj("rc", shape, class_name="Rejected")) == review.REJECTED
    assert review.review_state(hubseg_obj("c", shape, "corrected")) == review.CORRECTED
    assert review.review_state(hubseg_obj("x", shape, class_name="Sclerotic")) == review.CORRECTED
    assert review.review_state(hubseg_obj("n", shape, class_name=None)) == review.CORRECTED
    edited = hubseg_obj("e", shape)
    edited.geometry = box(0, 0, 45, 40)
    assert review.is_edited(edited) is True
    assert review.review_state(edited) == review.CORRECTED
    edited_accepted = hubseg_obj("ea", shape, "accepted")
    edited_accepted.geometry = box(2, 0, 40, 40)
    assert review.review_state(edited_accepted) == review.CORRECTED


def test_only_pending_unedited_stamped_hubseg_objects_are_replaceable():
    shape = box(0, 0, 40, 40)
    assert review.is_replaceable(hubseg_obj("p", shape))
    assert not review.is_replaceable(hubseg_obj("a", shape, "accepted"))
    assert not review.is_replaceable(hubseg_obj("r", shape, "rejected"))
    assert not review.is_replaceable(user_obj("u", shape))
    unstamped = hubseg_obj("nostamp", shape, stamp=False)
    assert review.review_state(unstamped) == review.PENDING
    assert review.is_edited(unstamped) is None
    assert not review.is_replaceable(unstamped), "unknown shape history must never be replaced"
    edited = hubseg_obj("e", shape)
    edited.geometry = box(0, 0, 41, 40)
    assert not review.is_replaceable(edited)


def test_plan_replaces_pending_keeps_the_rest_and_drops_duplicates_of_kept_objects():
    existing = [
        hubseg_obj("pending", box(0, 0, 40, 40)),
        hubseg_obj("accepted", box(100, 0, 140, 40), "accepted"),
        hubseg_obj("rejected", box(200, 0, 240, 40), "rejected"),
        user_obj("user-glom", box(300, 0, 340, 40)),
        user_obj("region", box(-1000, -1000, 5000, 5000), class_name="Reviewed region"),
        user_obj("tumour", box(0, 500, 100, 600), class_name="Tumor"),
    ]
    proposals = [
        NewObject(box(1, 1, 41, 41), "Glomerulus"),  # where the pending one was: added again
        NewObject(box(102, 2, 142, 42), "Glomerulus"),  # duplicate of accepted
        NewObject(box(201, 0, 241, 40), "Glomerulus"),  # duplicate of rejected: the user said no
        NewObject(box(305, 5, 345, 45), "Glomerulus"),  # duplicate of the user's own glomerulus
        NewObject(box(10, 510, 40, 540), "Glomerulus"),  # inside a non-glomerulus user annotation: new
        NewObject(box(400, 0, 440, 40), "Glomerulus"),  # new
    ]
    plan = review.plan_replacement(existing, proposals)
    assert plan.remove_keys == ["pending"]
    assert [p.geometry.bounds for p in plan.add] == [(1, 1, 41, 41), (10, 510, 40, 540), (400, 0, 440, 40)]
    assert plan.dropped_duplicates == 3
    assert plan.kept == 3  # accepted, rejected, user's glomerulus (regions/other classes are not label objects)


def test_status_counts():
    shape = box(0, 0, 10, 10)
    edited = hubseg_obj("e", shape)
    edited.geometry = box(0, 0, 12, 10)
    objects = [
        hubseg_obj("p1", shape), hubseg_obj("p2", shape), hubseg_obj("a", shape, "accepted"),
        hubseg_obj("r", shape, class_name="Rejected"), edited,
        user_obj("u", shape), user_obj("region", box(0, 0, 100, 100), class_name="Reviewed region"),
        # a detection region still holding pending proposals is not reviewed yet; one without is
        user_obj("det-region", box(0, 0, 100, 100), class_name=None, **{review.META_REGION: "m-v1"}),
        user_obj("det-region-done", box(500, 500, 600, 600), class_name=None, **{review.META_REGION: "m-v1"}),
    ]
    assert review.status_counts(objects) == {
        "objects": 5, "pending": 2, "accepted": 1, "rejected": 1, "corrected": 1, "reviewed": 3,
        "user_glomeruli": 1, "regions": 2,
    }
    assert [r.key for r in review.reviewed_regions(objects)] == ["region", "det-region-done"]


def test_shape_fingerprint_matches_the_java_implementation():
    # expected value computed by qupath-extension/core Geo.fingerprint (Java, HALF_UP rounding on ties)
    geometry = Polygon([(10.125, 20.375), (100.875, 20.375), (100.875, -0.625), (10.125, 20.375)])
    assert review.shape_fingerprint(geometry) == "307b888d48e72005"


def test_objects_are_checked_with_the_shape_fingerprint():
    shape = box(0, 0, 40, 40)
    meta = {review.META_MODEL: "m-v1", review.META_REVIEW: "pending",
            review.META_SHAPE: review.shape_fingerprint(shape)}
    untouched = ProjectObject("x", shape, "Glomerulus", "annotation", dict(meta), {})
    assert review.is_edited(untouched) is False and review.is_replaceable(untouched)
    moved = ProjectObject("y", box(0, 0, 40, 44), "Glomerulus", "annotation", dict(meta), {})
    assert review.is_edited(moved) is True and review.review_state(moved) == review.CORRECTED


def test_objects_stored_with_only_the_legacy_fingerprint_still_classify():
    shape = box(0, 0, 40, 40)
    meta = {review.META_MODEL: "m-v1", review.META_REVIEW: "pending",
            review.META_GEOMETRY: review.legacy_geometry_fingerprint(shape)}
    untouched = ProjectObject("x", shape, "Glomerulus", "annotation", dict(meta), {})
    assert review.is_edited(untouched) is False and review.is_replaceable(untouched)
    assert review.review_state(untouched) == review.PENDING
    moved = ProjectObject("y", box(0, 0, 40, 44), "Glomerulus", "annotation", dict(meta), {})
    assert review.is_edited(moved) is True and review.review_state(moved) == review.CORRECTED
    assert not review.is_replaceable(moved)


def test_one_fingerprint_is_written():
    stamped = review.stamp_geometry({review.META_MODEL: "m-v1"}, box(0, 0, 4, 4))
    assert stamped == {review.META_MODEL: "m-v1", review.META_SHAPE: review.shape_fingerprint(box(0, 0, 4, 4))}
