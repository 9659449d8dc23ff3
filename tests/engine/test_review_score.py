"""The review score: features, the calibrated logistic fit, gating and review order in detection."""

import numpy as np
import pytest
import shapely

from hubseg.instances import DetectedObject
from hubseg.pipeline import DetectionOptions, detect
from hubseg.review_score import (BORDER_CAP_UM, DEFAULT_FEATURES, FEATURES, feature_matrix, fit_logistic, fit_review_model, predict,
                                 raw_features)
from hubseg.slide import ArraySlide


def test_features_of_a_square_near_the_border():
    square = DetectedObject(shapely.box(10, 10, 50, 50), mean_probability=0.9, mean_energy=3.0, area_um2=400.0,
                            perimeter_um=80.0)
    row = raw_features(square, shapely.box(0, 0, 1000, 1000), level0_pixel_um=0.5)
    assert row["border_distance_um"] == pytest.approx(5.0)  # 10 px × 0.5 µm
    assert row["solidity"] == pytest.approx(1.0) and row["circularity"] == pytest.approx(np.pi / 4)
    assert raw_features(square, None)["border_distance_um"] == BORDER_CAP_UM
    far = raw_features(square, shapely.box(-5000, -5000, 5000, 5000), 1.0)
    assert far["border_distance_um"] == BORDER_CAP_UM  # capped
    x = feature_matrix([row], {"median": 2.0, "scale": 0.5})
    assert x.shape == (1, len(FEATURES)) and x[0, 0] == pytest.approx(2.0) and x[0, 2] == pytest.approx(np.log(400))


def test_logistic_fit_is_calibrated_on_a_known_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    truth = 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    y = rng.random(4000) < truth
    model = fit_logistic(x, y, l2=0.01)
    slopes = np.asarray(model["coefficients"]) / np.asarray(model["std"])
    assert slopes == pytest.approx([2.0, -1.0], abs=0.2)
    p = predict(model, x)
    # calibrated: in each decile of predicted probability the observed frequency matches
    for lo in np.arange(0, 1, 0.2):
        sel = (p >= lo) & (p < lo + 0.2)
        assert abs(y[sel].mean() - p[sel].mean()) < 0.05


def _objects(rng, n_true=20, n_false=10):
    """True objects: large round, mixed energy; false: small fragments with energies overlapping the true ones."""
    rows, matched = [], []
    for _ in range(n_true):
        rows.append({"mean_energy": rng.normal(3.0, 1.0), "mean_probability": rng.uniform(0.8, 0.95),
                     "area_um2": rng.uniform(8000, 20000), "solidity": rng.uniform(0.92, 0.99),
                     "circularity": rng.uniform(0.75, 0.95), "border_distance_um": 200.0})
        matched.append(True)
    for _ in range(n_false):
        rows.append({"mean_energy": rng.normal(2.2, 1.0), "mean_probability": rng.uniform(0.7, 0.9),
                     "area_um2": rng.uniform(1000, 4000), "solidity": rng.uniform(0.7, 0.95),
                     "circularity": rng.uniform(0.4, 0.8), "border_distance_um": rng.uniform(0, 200)})
        matched.append(False)
    return rows, matched


def test_review_model_beats_energy_alone_out_of_fold():
    rows, matched = _objects(np.random.default_rng(1))
    review = fit_review_model(rows, matched, {"median": 3.0, "scale": 1.0}, source="synthetic", features=FEATURES)
    assert review["features"] == list(FEATURES) and review["n"] == 30 and review["n_true"] == 20
    assert review["auroc_oof"] > review["auroc_energy"] and review["auroc_oof"] >= 0.9
    assert review["calibration_source"] == "synthetic" and 0 < review["cutoff"] < 1
    # the default subset: energy, mean probability, area (few calibration objects; docs/models.md)
    small = fit_review_model(rows, matched, {"median": 3.0, "scale": 1.0})
    assert small["features"] == list(DEFAULT_FEATURES) and len(small["coefficients"]) == len(DEFAULT_FEATURES)
    with pytest.raises(ValueError, match="energy_z"):
        fit_review_model(rows, matched, {"median": 3.0, "scale": 1.0}, features=("mean_probability",))
    # fewer than three objects of a class: no model
    assert fit_review_model(rows[:22], matched[:22], {"median": 3.0, "scale": 1.0}) is None
    assert fit_review_model(rows, matched, None) is None


def test_detection_gates_and_orders_by_the_review_score(tissue_image, threshold_model_factory):
    # Two large dark disks (true-looking) and two small ones (fragment-looking); darkness sets energy.
    image = tissue_image(300, 400, disks=[(70, 70, 45, 60), (300, 200, 45, 40), (250, 60, 16, 30), (80, 230, 16, 20)])
    slide = ArraySlide(image, 1.0)
    rows, matched = _objects(np.random.default_rng(2))
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64, energy_gate={"cutoff": -100.0, "auroc": 0.5})
    model.card.review_model = fit_review_model(rows, matched, {"median": 3.0, "scale": 1.0}, source="synthetic")
    model.card.review_model["cutoff"] = 0.5
    result = detect(slide, model, options=DetectionOptions(min_area_um2=100))
    assert len(result.objects) == 4
    scores = [o.review_score for o in result.objects]
    assert all(0.0 <= s <= 1.0 for s in scores)
    small = [o for o in result.objects if o.area_um2 < 2000]
    large = [o for o in result.objects if o.area_um2 > 5000]
    assert max(o.review_score for o in small) < min(o.review_score for o in large)
    # the gate is the review score's, not energy's (whose cut-off here would flag nothing)
    assert all(o.uncertain == (o.review_score < 0.5) for o in result.objects) and any(o.uncertain for o in result.objects)
    assert all(o.energy_gate is None for o in result.objects)
    uncertain_first = sorted(result.objects, key=lambda o: (not o.uncertain, o.review_score))
    assert result.objects == uncertain_first and [o.rank for o in sorted(result.objects, key=lambda o: o.rank)] == [1, 2, 3, 4]
    assert min(result.objects, key=lambda o: o.rank).review_score == min(scores)
    fc = result.to_feature_collection()
    assert fc["properties"]["review_gate"]["kind"] == "review score" and fc["properties"]["energy_gate"] is None
    for feature, obj in zip(fc["features"], result.objects):
        measurements = feature["properties"]["measurements"]
        assert measurements["hubseg review score"] == pytest.approx(obj.review_score, abs=1e-6)
        assert "hubseg energy" in measurements and "hubseg energy gate" not in measurements
    # without a review model: no score in the measurements (the energy gate decides)
    model.card.review_model = None
    plain = detect(slide, model, options=DetectionOptions(min_area_um2=100)).to_feature_collection()
    assert all("hubseg review score" not in f["properties"]["measurements"] for f in plain["features"])


def test_out_of_fold_scores_keep_groups_whole():
    from hubseg.review_score import out_of_fold_scores

    rng = np.random.default_rng(3)
    # one object seen under four conditions = four nearly identical rows; its copies must not score each other
    base = rng.normal(size=(12, 2))
    x = np.repeat(base, 4, axis=0) + rng.normal(scale=1e-3, size=(48, 2))
    y = np.repeat(rng.random(12) < 0.5, 4)
    y[:4], y[4:8] = True, False
    groups = np.repeat(np.arange(12), 4)
    grouped = out_of_fold_scores(x, y, folds=4, groups=groups)
    leaky = out_of_fold_scores(x, y, folds=4)
    from hubseg.metrics import auroc

    # with copies in the training folds, the leaky estimate is optimistic (labels are random)
    assert auroc(leaky[y], leaky[~y]) > auroc(grouped[y], grouped[~y])


def test_scoring_uses_the_border_cap_the_model_was_fitted_with():
    """An object 100 µm inside the region: a model fitted with the 200 µm cap sees 100, one fitted with today's
    cap sees the cap — a tile-fitted score never extrapolates to distances it has not seen."""
    from hubseg.review_score import score_objects

    obj = DetectedObject(shapely.box(100, 100, 140, 140), mean_probability=0.9, mean_energy=3.0, area_um2=1600.0,
                         perimeter_um=160.0)
    region = shapely.box(0, 0, 1000, 1000)
    model = {"standardisation": {"energy_reference": {"median": 2.0, "scale": 0.5}, "mean": [0.0] * 6, "std": [1.0] * 6},
             "coefficients": [0.0, 0.0, 0.0, 0.0, 0.0, -0.05], "intercept": 0.0}
    scores = {}
    for cap in (200.0, BORDER_CAP_UM):
        model["standardisation"]["border_cap_um"] = cap
        score_objects([obj], model, region, level0_pixel_um=1.0)
        scores[cap] = obj.review_score
    assert BORDER_CAP_UM < 100.0
    assert scores[200.0] == pytest.approx(1 / (1 + np.exp(0.05 * 100.0)))
    assert scores[BORDER_CAP_UM] == pytest.approx(1 / (1 + np.exp(0.05 * BORDER_CAP_UM)))
