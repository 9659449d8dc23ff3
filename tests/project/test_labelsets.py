"""Label sets built from a project image's objects (format hubseg-labelset/1, docs/architecture.md)."""

from __future__ import annotations

import json

from shapely.geometry import box, shape

from hubseg.project import labelsets, review
from hubseg.project.store import ProjectObject

from .test_review import hubseg_obj, user_obj


def classes_by_key(label_set):
    return {f["id"]: f["properties"]["classification"]["name"] for f in label_set["features"]["features"]}


def test_label_set_collects_positives_negatives_and_reviewed_regions(tmp_path):
    edited = hubseg_obj("edited", box(500, 0, 540, 40))
    edited.geometry = box(500, 0, 545, 40)
    objects = [
        user_obj("region", box(0, 0, 1000, 1000), class_name="Reviewed region"),
        hubseg_obj("accepted", box(0, 0, 40, 40), "accepted"),
        hubseg_obj("rejected-meta", box(100, 0, 140, 40), "rejected"),
        hubseg_obj("rejected-class", box(200, 0, 240, 40), class_name="Rejected"),
        hubseg_obj("pending-inside", box(300, 0, 340, 40)),
        hubseg_obj("pending-outside", box(5000, 0, 5040, 40)),
        hubseg_obj("reclassified", box(400, 0, 440, 40), "accepted", class_name="Sclerotic"),
        edited,
        user_obj("drawn", box(600, 0, 650, 50)),
        user_obj("user-negative", box(700, 0, 750, 50), class_name="Rejected"),
        user_obj("tumour", box(800, 0, 850, 50), class_name="Tumor"),
    ]
    label_set = labelsets.build_label_set(objects, image_path=tmp_path / "slide.tif", pixel_size_um=0.5)
    assert label_set["format"] == "hubseg-labelset/1"
    assert label_set["image"] == {"path": str((tmp_path / "slide.tif").resolve())}
    assert label_set["pixel_size_um"] == 0.5 and label_set["source"] == "project" and label_set["model"] == "m-v1"
    assert [shape(r).bounds for r in label_set["regions"]] == [(0, 0, 1000, 1000)]
    assert classes_by_key(label_set) == {
        "accepted": "Glomerulus", "rejected-meta": "Rejected", "rejected-class": "Rejected",
        "pending-inside": "Glomerulus", "edited": "Glomerulus", "drawn": "Glomerulus", "user-negative": "Rejected",
    }
    by_key = {f["id"]: f for f in label_set["features"]["features"]}
    assert by_key["edited"]["properties"]["metadata"][review.META_REVIEW] == "corrected"
    assert by_key["pending-inside"]["properties"]["metadata"][review.META_REVIEW] == "accepted"
    assert not {review.META_GEOMETRY, review.META_SHAPE} & set(by_key["accepted"]["properties"]["metadata"])
    assert shape(by_key["edited"]["geometry"]).bounds == (500, 0, 545, 40)
    assert json.loads(json.dumps(label_set)) == label_set  # plain JSON, as POST /v1/labels takes it


def test_nothing_reviewed_gives_no_label_set(tmp_path):
    objects = [hubseg_obj("p", box(0, 0, 40, 40)), user_obj("tumour", box(0, 0, 400, 400), class_name="Tumor")]
    assert labelsets.build_label_set(objects, image_path=tmp_path / "s.tif", pixel_size_um=0.5) is None


def test_detection_region_counts_once_every_proposal_in_it_is_reviewed(tmp_path):
    region = ProjectObject("det", box(0, 0, 500, 500), None, "annotation", {review.META_REGION: "m-v1"}, {})
    accepted = hubseg_obj("a", box(0, 0, 40, 40), "accepted")
    pending = hubseg_obj("p", box(100, 100, 140, 140))
    half_done = labelsets.build_label_set([region, accepted, pending], image_path=tmp_path / "s.tif", pixel_size_um=1)
    # the pending proposal keeps the region open; the accepted object vouches for its own footprint only
    assert [shape(r).bounds for r in half_done["regions"]] == [(0, 0, 40, 40)]
    assert classes_by_key(half_done) == {"a": "Glomerulus"}
    rejected = hubseg_obj("p", box(100, 100, 140, 140), "rejected")
    done = labelsets.build_label_set([region, accepted, rejected], image_path=tmp_path / "s.tif", pixel_size_um=1)
    assert len(done["regions"]) == 1 and classes_by_key(done) == {"a": "Glomerulus", "p": "Rejected"}


def test_uncertain_proposals_follow_the_extension_rules(tmp_path):
    objects = [
        user_obj("region", box(0, 0, 1000, 1000), class_name="Reviewed region"),
        hubseg_obj("uncertain-pending", box(0, 0, 40, 40), class_name="Glomerulus (uncertain)"),
        hubseg_obj("uncertain-accepted", box(100, 0, 140, 40), "accepted", class_name="Glomerulus (uncertain)"),
    ]
    assert review.review_state(objects[1]) == review.PENDING
    label_set = labelsets.build_label_set(objects, image_path=tmp_path / "s.tif", pixel_size_um=1)
    assert classes_by_key(label_set) == {"uncertain-pending": "Glomerulus (uncertain)", "uncertain-accepted": "Glomerulus"}
