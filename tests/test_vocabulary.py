"""The vocabulary is defined once (hubseg.vocabulary) and its JSON copy, which the Java core's tests read, is
current; the library's modules use the same values."""

from __future__ import annotations

import json

from hubseg import labels, pipeline, qupath_geojson, vocabulary
from hubseg.project import review


def test_json_copy_is_current():
    stored = vocabulary.JSON_PATH.read_text(encoding="utf-8")
    assert stored == vocabulary.render(), "hubseg/data/vocabulary.json is stale: run python -m hubseg.vocabulary"
    assert json.loads(stored)["classes"]["uncertain"] == "Glomerulus (uncertain)"


def test_modules_use_the_vocabulary():
    assert pipeline.DetectionOptions().uncertain_class_name == vocabulary.CLASS_UNCERTAIN
    assert labels.IGNORED_CLASSES == (vocabulary.CLASS_UNCERTAIN,)
    assert (labels.POSITIVE_CLASS, labels.NEGATIVE_CLASS) == (vocabulary.CLASS_GLOMERULUS, vocabulary.CLASS_REJECTED)
    assert review.META_MODEL == qupath_geojson.METADATA_MODEL == vocabulary.META_MODEL == "hubseg.model"
    assert review.REVIEW_STATES == vocabulary.REVIEW_STATES == ("pending", "accepted", "rejected", "corrected")
    assert qupath_geojson.MEASUREMENT_ENERGY == vocabulary.MEASUREMENT_ENERGY == "hubseg energy"
