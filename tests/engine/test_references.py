"""Reference glomeruli: the most certain objects of an image, the CLI flag, and a card's stored crops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from hubseg.errors import InvalidInputError, NotFoundError
from hubseg.instances import DetectedObject
from hubseg.pipeline import DetectionOptions, detect, mark_references
from hubseg.slide import ArraySlide

from .test_cli import run_cli


def _object(energy, score=None, uncertain=False):
    obj = DetectedObject(shapely.box(0, 0, 10, 10), mean_probability=0.9, mean_energy=energy, area_um2=100.0,
                         perimeter_um=40.0, review_score=score)
    obj.uncertain = uncertain
    return obj


def test_references_are_the_most_certain_confident_objects():
    objects = [_object(1.0), _object(3.0), _object(9.0, uncertain=True), _object(2.0)]
    mark_references(objects, 2)
    assert [o.reference_rank for o in objects] == [None, 1, None, 2]  # uncertain objects never serve as references
    scored = [_object(5.0, 0.2), _object(1.0, 0.9), _object(3.0, 0.5)]
    mark_references(scored, 5)
    assert [o.reference_rank for o in scored] == [3, 1, 2]  # the review score decides when every object has one
    mark_references(scored, 0)
    assert all(o.reference_rank is None for o in scored)


def test_detect_marks_references_in_the_geojson(tissue_image, threshold_model_factory):
    # darker disks have higher energy under the threshold model: grey 20 is the most certain
    slide = ArraySlide(tissue_image(200, 400, disks=[(50, 100, 30, 90), (150, 100, 30, 20), (300, 100, 30, 60)]), 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    result = detect(slide, model, options=DetectionOptions(min_area_um2=50, references=2))
    features = result.to_feature_collection()["features"]
    ranks = {50 * round(shapely.geometry.shape(f["geometry"]).centroid.x / 50): f["properties"]["measurements"].get(
        "hubseg reference rank") for f in features}
    assert ranks == {50: None, 150: 1, 300: 2}
    with pytest.raises(InvalidInputError, match="references must be an integer from 0 to 100"):
        DetectionOptions(references=101).validate()


def test_cli_references_flag(tmp_path, tiff_writer, tissue_image, capsys):
    from hubseg.models.testing import make_threshold_model

    make_threshold_model(tmp_path / "data", pixel_size_um=1.0, tile_size=64)
    slide = tiff_writer(tmp_path / "s.ome.tif", tissue_image(300, 300, disks=[(80, 80, 40, 40), (200, 200, 40, 90)]), 1.0)
    out = tmp_path / "out.geojson"
    base = ["detect", str(slide), "--model", "threshold-test-v1", "--data-dir", str(tmp_path / "data"), "--quiet"]
    assert run_cli(base + ["-o", str(out), "--references", "1"]) == 0
    measurements = [f["properties"]["measurements"] for f in json.loads(out.read_text())["features"]]
    assert sorted(m.get("hubseg reference rank", 0) for m in measurements) == [0, 1]
    capsys.readouterr()
    assert run_cli(base + ["-o", str(tmp_path / "bad.geojson"), "--references", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--references must be an integer from 0 to 100" in err and len(err.splitlines()) == 1


def test_card_reference_crops_are_chosen_from_true_glomeruli_and_served(registry, tissue_image):
    from hubseg.models.testing import make_threshold_model
    from hubseg.training.references import select_references, write_references
    from hubseg.training.sources import TrainingImage

    make_threshold_model(registry, pixel_size_um=1.0, tile_size=64)
    model = registry.load("threshold-test-v1", device="cpu")
    # two true glomeruli (dark 30 = most certain, 80) and one dark false object (no label)
    rgb = tissue_image(200, 400, disks=[(60, 100, 35, 30), (200, 100, 35, 80), (330, 100, 35, 10)])
    label = np.zeros((200, 400), np.uint8)
    yy, xx = np.mgrid[:200, :400]
    for cx in (60, 200):
        label[(xx - cx) ** 2 + (yy - 100) ** 2 < 35**2] = 1
    image = TrainingImage(name="img", label=label, pixel_size_um=1.0, rgb=rgb, positives=[(60, 100), (200, 100)])
    chosen = select_references(model, [image], count=3)
    assert [entry["rank"] for _, entry in chosen] == [1, 2]  # PER_IMAGE = 2 and the false object never counts
    assert chosen[0][1]["energy"] > chosen[1][1]["energy"]
    assert all(data[:2] == b"\xff\xd8" and len(data) < 20_000 for data, _ in chosen)
    card = write_references(registry.path("threshold-test-v1"), chosen, source="test")
    assert [r["file"] for r in card.references] == ["references/1.jpg", "references/2.jpg"]
    data, media = registry.reference_crop("threshold-test-v1", 1)
    assert media == "image/jpeg" and data == chosen[0][0]
    with pytest.raises(NotFoundError, match="valid indexes: 1, 2"):
        registry.reference_crop("threshold-test-v1", 3)
    (registry.path("threshold-test-v1") / "references" / "2.jpg").write_bytes(b"tampered")
    with pytest.raises(InvalidInputError, match="does not match its sha256"):
        registry.reference_crop("threshold-test-v1", 2)
