"""Pseudo-label targets of self-training on a generated slide, checked rule by rule.

The deterministic threshold model makes the teacher's probability known in closed form: a disk of grey ``v``
(colour ``(v, v-30, v+40)``) has probability ``sigmoid(12·(0.5 − mean RGB/255))``. So the slide holds a
confident glomerulus (dark, high energy), an uncertain one (detected, energy below the gate), a missed one
(probability between the low threshold and the detection threshold: not detected) and far tissue.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hubseg.pipeline import DetectionOptions
from hubseg.slide import ArraySlide
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.pseudolabels import PseudoLabelRules, image_identity, pseudo_label_slide

CONFIDENT, UNCERTAIN, MISSED = (90, 90, 25, 60), (240, 90, 25, 110), (90, 240, 25, 140)
GATE = {"cutoff": 1.2, "auroc": 0.9}  # energies: dark disk ≈ 1.55, medium ≈ 0.75


def _disk(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r**2


@pytest.fixture
def teacher_run(tissue_image, threshold_model_factory):
    rgb = tissue_image(330, 460, disks=[CONFIDENT, UNCERTAIN, MISSED], seed=3)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64, energy_gate=dict(GATE))
    rules = PseudoLabelRules(margin_um=30.0).resolve(model.card)
    slide = ArraySlide(rgb, 1.0)
    result = pseudo_label_slide(slide, model, rules, name="generated", options=DetectionOptions(tissue_detection=False))
    return rgb, rules, result


def test_thresholds_come_from_the_card(threshold_model_factory):
    model = threshold_model_factory(energy_gate=dict(GATE), threshold=0.4)
    rules = PseudoLabelRules().resolve(model.card)
    assert rules["energy_cutoff"] == GATE["cutoff"]
    assert rules["background_probability"] == pytest.approx(0.4 * 0.2)
    assert rules["margin_um"] == 30.0


def test_a_model_without_calibration_is_refused(threshold_model_factory):
    from hubseg.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="no calibrated confidence"):
        PseudoLabelRules().resolve(threshold_model_factory(energy_gate=None).card)


def test_targets_follow_the_rules_exactly(teacher_run):
    rgb, rules, result = teacher_run
    label = result.image.label
    shape = label.shape
    assert shape == rgb.shape[:2]  # model scale = level 0 here (1 µm/px both)
    assert result.stats["confident_objects"] == 1 and result.stats["uncertain_objects"] == 1

    confident, uncertain, missed = (_disk(shape, *d[:3]) for d in (CONFIDENT, UNCERTAIN, MISSED))
    core = lambda m: ndi.binary_erosion(m, iterations=2)  # noqa: E731  (polygon edges are sub-pixel)
    assert (label[core(confident)] == 1).all()
    assert (label[uncertain] == IGNORE_INDEX).all()  # uncertain object: ignored
    assert (label[missed] == IGNORE_INDEX).all()  # a miss stays ignored, never background
    assert (label == 1).sum() <= ndi.binary_dilation(confident, iterations=2).sum()
    assert not ((label == 1) & ~ndi.binary_dilation(confident, iterations=2)).any()

    # background: exactly where the teacher's probability is low and farther than the margin from anything higher
    mean = rgb.astype(np.float64).mean(axis=-1) / 255.0
    probability = 1.0 / (1.0 + np.exp(-12.0 * (0.5 - mean)))
    low = probability < rules["background_probability"]
    distance = ndi.distance_transform_edt(low)  # (pixels) to the nearest pixel at or above the low threshold
    expected_background = low & (distance > rules["margin_um"])
    assert not ((label == 0) & ~expected_background).any()  # never background where the rules forbid it
    # the objects' polygons (simplified by up to 1 µm) count as "near" too, so the margin may reach a pixel further
    missing = expected_background & (label != 0)
    assert missing.sum() < 10 and (distance[missing] <= rules["margin_um"] + 1.5).all()
    ring = ndi.binary_dilation(missed, iterations=29) & ~missed
    assert not (label[ring] == 0).any()  # within the margin of a miss: no background
    far = np.zeros(shape, bool)
    far[:, 360:] = True  # ≥ 95 px from every disk
    assert (label[far] == 0).all()


def test_glass_is_ignored_and_counts_are_reported(tissue_image, threshold_model_factory):
    rgb = tissue_image(330, 460, disks=[CONFIDENT, UNCERTAIN, MISSED], glass_border=60, seed=4)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64, energy_gate=dict(GATE))
    rules = PseudoLabelRules().resolve(model.card)
    result = pseudo_label_slide(ArraySlide(rgb, 1.0), model, rules, name="glass")
    label = result.image.label
    assert (label[:15] == IGNORE_INDEX).all()  # deep in the glass frame: not a tissue tile to learn from
    assert (label[200:260, 380:395] == 0).all()  # far tissue inside the frame
    stats = result.stats
    assert 0.0 < stats["ignored_tissue_fraction"] < 1.0
    assert stats["positive_pixels"] == int((label == 1).sum())
    assert stats["background_pixels"] == int((label == 0).sum())
    assert result.image.positives and abs(result.image.positives[0][0] - 90) < 2


def test_identity_hashes_the_first_mib_and_size(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * (1 << 20) + b"tail")
    other = tmp_path / "b.bin"
    other.write_bytes(b"x" * (1 << 20) + b"TAIL")
    a, b = image_identity(path), image_identity(other)
    assert a["sha256_first_mib"] == b["sha256_first_mib"] and a["size"] == b["size"] == (1 << 20) + 4
    assert a["path"].endswith("a.bin") and len(a["sha256_first_mib"]) == 64
