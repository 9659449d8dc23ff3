"""Every fine-tune ends with a calibrated gate and a review model where the data allow."""

import json

import numpy as np
import pytest
import tifffile

from hubseg.models.card import ModelCard
from hubseg.training import train
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.calibration import calibrate, calibration_message, split_regions
from hubseg.training.sources import LabelSetSource, TrainingImage

from tests.support.training import tiny_config

REGION_UM = 256


def _square(x, y, side):
    return [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]


def _disk(cx, cy, r, n=24):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = [[float(cx + r * np.cos(a)), float(cy + r * np.sin(a))] for a in angles]
    return [ring + [ring[0]]]


def write_region_labelset(tmp_path, regions=3, seed=0):
    """One slide, ``regions`` reviewed squares side by side, each with three dark disks (glomeruli) and one
    rejected dark blob; 1 µm/px."""
    rng = np.random.default_rng(seed)
    width, height = REGION_UM * regions, REGION_UM
    rgb = np.clip(np.full((height, width, 3), (225, 170, 200), np.float64) + rng.normal(0, 6, (height, width, 3)), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width]
    features = []
    feature = lambda coords, name: {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
                                    "properties": {"classification": {"name": name}}}
    for r in range(regions):
        x0 = r * REGION_UM
        for cx, cy in ((60, 60), (180, 80), (110, 190)):
            radius = rng.uniform(26, 32)
            rgb[(xx - x0 - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = (120, 60, 140)
            features.append(feature(_disk(x0 + cx, cy, radius), "Glomerulus"))
        rgb[200:225, x0 + 200:x0 + 240] = (135, 80, 150)  # a tubule-like blob the reviewer rejected
        features.append(feature(_square(x0 + 200, 200, 25), "Rejected"))
    image = tmp_path / "slide.tif"
    tifffile.imwrite(image, rgb.astype(np.uint8))
    labelset = {
        "format": "hubseg-labelset/1", "image": {"path": "slide.tif"}, "pixel_size_um": 1.0,
        "regions": [{"type": "Polygon", "coordinates": _square(r * REGION_UM + 2, 2, REGION_UM - 4)} for r in range(regions)],
        "features": {"type": "FeatureCollection", "features": features}, "source": "qupath",
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labelset))
    return path


def test_one_label_set_is_split_by_its_regions(tmp_path):
    [image] = LabelSetSource(write_region_labelset(tmp_path)).load(model_pixel_size_um=2.0)
    assert len(image.regions) == 3 and len(image.positives) == 9 and len(image.negatives) == 3
    train_images, held = split_regions([image], val_fraction=0.2, seed=0)
    assert len(held) == 1 and len(train_images) == 1
    assert len(held[0].regions) == 1 and len(train_images[0].regions) == 2
    assert len(held[0].positives) == 3 and len(train_images[0].positives) == 6
    assert len(held[0].negatives) == 1 and len(train_images[0].negatives) == 2
    # each side sees only its own regions: the other side's pixels are ignored, never background
    labelled_train = train_images[0].label != IGNORE_INDEX
    labelled_held = held[0].label != IGNORE_INDEX
    assert not (labelled_train & labelled_held).any()
    assert labelled_train.sum() + labelled_held.sum() == (image.label != IGNORE_INDEX).sum()
    assert "[regions" in held[0].name
    # nothing to hold out: one region, or val_fraction 0
    assert split_regions([image], 0.0, 0)[1] == []


def _disk_image(true_disks, false_blobs, name="t"):
    """Threshold-model image at 2 µm/px: dark true disks (labelled) and paler, smaller false blobs (background)."""
    yy, xx = np.mgrid[0:160, 0:320]
    rgb = np.full((160, 320, 3), 235, np.uint8)
    label = np.zeros((160, 320), np.uint8)
    for cx, cy, r in true_disks:
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
        rgb[disk] = (50, 30, 80)
        label[disk] = 1
    for cx, cy, r in false_blobs:
        rgb[(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2] = (105, 95, 110)
    return TrainingImage(name=name, label=label, pixel_size_um=2.0, rgb=rgb)


def test_held_out_calibration_fits_gate_and_review_model(tmp_path):
    from hubseg.models.registry import ModelRegistry
    from hubseg.models.testing import make_threshold_model
    from hubseg.gating import energy_reference
    from hubseg.training.evaluate import evaluate_images

    make_threshold_model(tmp_path, pixel_size_um=2.0, tile_size=64)
    model = ModelRegistry(tmp_path).load("threshold-test-v1", device="cpu")
    images = [_disk_image([(40, 40, 18), (120, 50, 16), (200, 40, 20), (280, 100, 17)],
                          [(60, 120, 10), (150, 120, 11), (240, 130, 10)], name=f"i{k}") for k in range(4)]
    held = evaluate_images(model, images)
    assert held.tp == 16 and held.fp == 12 and len(held.features) == 28
    reference = energy_reference(evaluate_images(model, images[:1]))
    gate, review, summary = calibrate(held, reference, None, held_out_regions=4)
    assert summary["method"] == "held-out regions" and summary["n"] == 28 and summary["true_objects"] == 16
    assert summary["n_true"] == 16 and summary["n_false"] == 12 and summary["rule"] == "refit review model"
    assert gate["source"].startswith("held-out regions") and gate["auroc"] == pytest.approx(1.0)
    assert "16 true, 12 false" in gate["source"]
    assert gate["z_cutoff"] == pytest.approx((gate["cutoff"] - reference["median"]) / reference["scale"], abs=1e-5)
    assert review is not None and review["n"] == 28 and review["n_true"] == 16
    assert review["auroc_oof"] >= 0.9 and review["auroc_energy"] == pytest.approx(1.0)
    assert 0.0 < review["cutoff"] < 1.0 and review["calibration_source"] == gate["source"]
    # fewer than MIN_EVIDENCE false objects and no base to carry from: no review model, the energy gate alone,
    # and the summary and message say why
    few = evaluate_images(model, images[:2])
    gate, review, summary = calibrate(few, reference, None, held_out_regions=2)
    assert gate is not None and review is None and summary["rule"] == "thin evidence, nothing to carry"
    assert "no base model" in summary["review_model_note"]
    assert "6 false" in calibration_message(summary) and "rule: thin evidence" in calibration_message(summary)


def test_nothing_held_out_carries_the_base_gate_through_the_new_reference():
    reference = {"median": 10.0, "scale": 2.0, "objects": 5}
    base = ModelCard(name="base-v1", energy_gate={"cutoff": 3.0, "reference": {"median": 5.0, "scale": 1.0}},
                     review_model={"coefficients": [1.0] * 6, "intercept": 0.0, "cutoff": 0.4,
                                   "standardisation": {"energy_reference": {"median": 5.0, "scale": 1.0},
                                                       "mean": [0.0] * 6, "std": [1.0] * 6},
                                   "calibration_source": "cv folds"})
    gate, review, summary = calibrate(None, reference, base)
    assert summary["method"] == "carried from base" and gate["z_cutoff"] == pytest.approx(-2.0)
    assert gate["cutoff"] == pytest.approx(10.0 - 2.0 * 2.0) and "carried from base base-v1" in gate["source"]
    assert review["standardisation"]["energy_reference"] == reference
    assert review["calibration_source"].startswith("carried from base base-v1")
    assert base.review_model["standardisation"]["energy_reference"]["median"] == 5.0  # the base card is untouched
    # held-out objects of one class only (no false object among them): no cut-off can be fitted there, so carried
    from hubseg.training.evaluate import EvaluationResult

    all_true = EvaluationResult(tp=2, energies=[9.0, 11.0], matched=[True, True], features=[{}, {}])
    gate, _, summary = calibrate(all_true, reference, base, held_out_regions=2)
    assert summary["method"] == "thin evidence: carried from base" and summary["n"] == 2
    assert summary["evidence_weight"] == 0.0 and gate["cutoff"] == pytest.approx(6.0)
    assert calibration_message(summary).startswith("calibration: THIN EVIDENCE (2 held-out objects: 2 true, 0 false")
    # without a base to carry from, the held-out gate stands (it keeps every held-out object)
    gate, _, summary = calibrate(all_true, reference, None, held_out_regions=2)
    assert summary["method"] == "held-out regions" and gate["cutoff"] == pytest.approx(9.0)
    # no base gate and nothing held out: explicitly none
    gate, review, summary = calibrate(None, reference, ModelCard(name="plain-v1"))
    assert gate is None and review is None and summary["method"] == "none"


def test_fine_tunes_from_one_label_set_end_gated(tmp_path, registry):
    """A newcomer's first export (one label set, three regions): with the default split a region is held out;
    with --val-fraction 0 the base's gate is carried. Never a silent null."""
    source = LabelSetSource(write_region_labelset(tmp_path))
    base = train(tiny_config(epochs=6, val_fraction=0.0, family="lab", lr=5e-3), [source], registry)
    assert base.metrics["calibration"]["method"] == "none"  # a new model with nothing held out says so
    # give the base a standardised gate, as the shipped model has
    card = registry.card("lab-v1")
    card.energy_gate = {"cutoff": 1.0, "z_cutoff": -1.5, "reference": {"median": 2.0, "scale": 0.5}}
    card.save(registry.path("lab-v1"))

    messages = []
    tuned = train(tiny_config(base_model="lab-v1", family=None, epochs=2, val_fraction=0.2), [source], registry,
                  progress=lambda d, t, m: messages.append(m))
    calibration = tuned.metrics["calibration"]
    assert tuned.metrics["validation"]["image_names"][0].startswith("slide[regions")
    assert messages[-1] == calibration["message"]
    # the held-out region was detected on and calibrated from; when its objects are all true glomeruli (no false
    # object to place a cut-off against) the base's gate is carried instead, and the card says why
    assert calibration["n"] > 0, calibration
    # one region holds 3 glomeruli and 1 rejected blob: thin evidence, so the base's gate is carried (shrunk
    # towards the fitted cut-off in proportion to the evidence) and the card and the message say so
    assert calibration["method"] == "thin evidence: carried from base", calibration
    assert calibration["n_true"] + calibration["n_false"] == calibration["n"] == tuned.energy_gate["objects"]
    assert "thin held-out evidence" in tuned.energy_gate["source"]
    assert messages[-1].startswith("calibration: THIN EVIDENCE") and "carried from base lab-v1" in messages[-1]

    carried = train(tiny_config(base_model="lab-v1", family=None, epochs=1, val_fraction=0.0), [source], registry)
    calibration = carried.metrics["calibration"]
    assert calibration["method"] == "carried from base", calibration
    reference = carried.energy_gate["reference"]
    assert carried.energy_gate["cutoff"] == pytest.approx(reference["median"] - 1.5 * reference["scale"], abs=1e-5)
    assert "carried from base lab-v1" in carried.energy_gate["source"]
    assert calibration["message"].startswith("calibration: NO held-out regions")

    # an older base card with a raw cut-off only: its reference is measured on the same regions, then carried
    card = registry.card("lab-v1")
    card.energy_gate = {"cutoff": 1.0, "auroc": 0.9}
    card.save(registry.path("lab-v1"))
    older = train(tiny_config(base_model="lab-v1", family=None, epochs=1, val_fraction=0.0), [source], registry)
    assert older.metrics["calibration"]["method"] == "carried from base", older.metrics["calibration"]
    assert older.energy_gate["cutoff"] is not None and older.energy_gate["reference"]["objects"] > 0


REFERENCE = {"median": 4.0, "scale": 1.0, "objects": 40}


def _objects(rng, n, true):
    """Raw review features of ``n`` objects: true ones higher in energy, probability and area than false ones."""
    z = rng.normal(0.0, 1.0, n) if true else rng.normal(-1.5, 1.0, n)
    prob = np.clip(rng.normal(0.9 if true else 0.8, 0.05, n), 0.5, 1.0)
    area = np.exp(rng.normal(9.5 if true else 8.4, 0.4 if true else 0.7, n))
    return [{"mean_energy": REFERENCE["median"] + a, "mean_probability": b, "area_um2": c, "solidity": 0.9,
             "circularity": 0.8, "border_distance_um": 25.0} for a, b, c in zip(z, prob, area)]


def _held_out(true_rows, false_rows):
    from hubseg.training.evaluate import EvaluationResult

    rows = true_rows + false_rows
    return EvaluationResult(tp=len(true_rows), fp=len(false_rows), energies=[r["mean_energy"] for r in rows],
                            matched=[True] * len(true_rows) + [False] * len(false_rows), features=rows)


def _base_card(rng):
    from hubseg.review_score import fit_review_model

    review = fit_review_model(_objects(rng, 300, True) + _objects(rng, 100, False), [True] * 300 + [False] * 100,
                              REFERENCE, source="base calibration")
    return ModelCard(name="base-v1", energy_gate={"cutoff": 2.8, "z_cutoff": -1.2, "reference": REFERENCE},
                     review_model=review)


def test_thin_evidence_never_yields_a_gate_that_flags_nothing():
    """The reported failure: one held-out region with 26 true and 3 false objects (the three most glomerulus-like
    of their kind). A review model refitted on them barely flags anything on new objects of the same distribution;
    under the evidence rule the base's review model is carried and does."""
    from hubseg.review_score import fit_review_model, review_scores
    from hubseg.training.calibration import MIN_EVIDENCE

    rng = np.random.default_rng(0)
    base = _base_card(rng)
    candidates = _objects(rng, 200, False)
    scores = review_scores(base.review_model, candidates)
    held = _held_out(_objects(rng, 26, True), [candidates[i] for i in np.argsort(scores)[-3:]])
    fresh_true, fresh_false = _objects(rng, 750, True), _objects(rng, 250, False)

    def flagged(review):
        return (float(np.mean(review_scores(review, fresh_true) < review["cutoff"])),
                float(np.mean(review_scores(review, fresh_false) < review["cutoff"])))

    naive = fit_review_model(held.features, held.matched, REFERENCE)  # what deciding on 3 false objects gives
    assert flagged(naive)[1] < 0.1  # it lets > 90 % of the false objects through as confident
    gate, review, summary = calibrate(held, REFERENCE, base, held_out_regions=1)
    assert 3 < MIN_EVIDENCE and summary["method"] == "thin evidence: carried from base"
    assert summary["n_true"] == 26 and summary["n_false"] == 3 and summary["review_model"] == "carried from base"
    true_flagged, false_flagged = flagged(review)
    assert false_flagged > 0.5 and true_flagged < 0.1, (true_flagged, false_flagged)
    # the energy cut-off: carried, moved towards the fitted one by 3/10 of the way
    fitted_z = (summary["fitted_cutoff"] - REFERENCE["median"]) / REFERENCE["scale"]
    assert gate["z_cutoff"] == pytest.approx(0.7 * -1.2 + 0.3 * fitted_z, abs=1e-5)
    assert "26 true, 3 false" in calibration_message(summary)


def test_enough_evidence_refit_only_when_it_beats_the_carried_gate_out_of_fold():
    rng = np.random.default_rng(1)
    base = _base_card(rng)
    held = _held_out(_objects(rng, 40, True), _objects(rng, 15, False))
    # a carried review model that ranks backwards (every coefficient sign flipped): the refit beats it out of fold
    bad = ModelCard(name="bad-v1", energy_gate=base.energy_gate,
                    review_model={**base.review_model, "coefficients": [-c for c in base.review_model["coefficients"]]})
    gate, review, summary = calibrate(held, REFERENCE, bad, held_out_regions=2)
    comparison = summary["comparison"]
    assert summary["rule"] == "refit review model" and comparison["refit_wins"]
    assert comparison["refit_f1_oof"] > comparison["carried_f1"] and review["calibration_source"].startswith("held-out")
    # perfectly separated objects: the carried model is already perfect, a tie keeps the carried one
    separated = _held_out([{**r, "mean_energy": REFERENCE["median"] + 1.0, "area_um2": 20000.0} for r in held.features[:40]],
                          [{**r, "mean_energy": REFERENCE["median"] - 4.0, "area_um2": 1000.0} for r in held.features[40:]])
    gate, review, summary = calibrate(separated, REFERENCE, base, held_out_regions=2)
    assert summary["comparison"]["carried_f1"] == 1.0 and not summary["comparison"]["refit_wins"]
    assert summary["rule"].startswith("carried review model") and review["calibration_source"].startswith("carried from base")
    assert "carried review model" in calibration_message(summary)


def test_a_model_without_an_energy_reference_carries_the_base_gate_unchanged():
    """A fine-tune with thin held-out evidence that finds no true object on its own training regions has no
    reference to carry a gate through: the base's gate and review model are kept as they are (it starts from the
    base's weights) rather than letting the thin fitted gate decide."""
    rng = np.random.default_rng(2)
    base = _base_card(rng)
    held = _held_out(_objects(rng, 1, True), _objects(rng, 2, False))
    gate, review, summary = calibrate(held, None, base, held_out_regions=1)
    assert summary["method"] == "thin evidence: carried from base" and summary["evidence_weight"] == 0.0
    assert gate["cutoff"] == base.energy_gate["cutoff"] and "raw" in gate["source"]
    assert review["coefficients"] == base.review_model["coefficients"] and "raw" in review["calibration_source"]
    assert calibration_message(summary).startswith("calibration: THIN EVIDENCE (3 held-out objects: 1 true, 2 false")
