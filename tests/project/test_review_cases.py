"""The shared golden review cases (hubseg/data/review_cases.json) through the Python rules; the Java core's
ReviewCasesTest runs the same file through Geo.fingerprint, HubsegObjects and LabelSetBuilder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import shape

from hubseg.project import labelsets, review
from hubseg.project.store import ProjectObject

CASES = json.loads((Path(review.__file__).resolve().parents[1] / "data" / "review_cases.json").read_text("utf-8"))


@pytest.mark.parametrize("item", CASES["fingerprints"], ids=lambda item: item["name"])
def test_fingerprint(item):
    assert review.shape_fingerprint(shape(item["geometry"])) == item["fingerprint"]


def _object(case: dict) -> ProjectObject:
    geometry = shape(CASES["shape"])
    metadata = {}
    if case["hubseg"]:
        metadata[review.META_MODEL] = "m-v1"
        if case["review"] is not None:
            metadata[review.META_REVIEW] = case["review"]
        stamped = {"matching": CASES["shape"], "changed": CASES["other_shape"]}.get(case["fingerprint"])
        if stamped is not None:
            metadata = review.stamp_geometry(metadata, shape(stamped))
    return ProjectObject("obj", geometry, case["class"], "annotation", metadata, {})


def _label(obj: ProjectObject) -> str | None:
    region = ProjectObject("region", shape(CASES["region"]), review.REVIEWED_REGION_CLASS, "annotation", {}, {})
    label_set = labelsets.build_label_set([region, obj], image_path="slide.tif", pixel_size_um=0.5,
                                          created="2026-01-01T00:00:00+00:00")
    classes = [f["properties"]["classification"]["name"] for f in label_set["features"]["features"] if f["id"] == "obj"]
    assert len(classes) <= 1
    return classes[0] if classes else None


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda case: case["name"])
def test_review_case(case):
    obj = _object(case)
    outcome = {"state": review.review_state(obj), "replaceable": review.is_replaceable(obj), "label": _label(obj)}
    assert outcome == case["expect"]


def test_cases_cover_every_state_and_label():
    expected = [case["expect"] for case in CASES["cases"]]
    assert {e["state"] for e in expected} == {*review.REVIEW_STATES, review.USER}
    assert {e["label"] for e in expected} == {*review.PROPOSAL_CLASSES, review.REJECTED_CLASS, None}
    assert {True, False} == {e["replaceable"] for e in expected}
