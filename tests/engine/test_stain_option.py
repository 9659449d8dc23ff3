"""Stain normalisation as a detection option: card field, DetectionOptions.stain_normalization, CLI flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hubseg.errors import InvalidInputError
from hubseg.inference import InferenceOptions, predict_maps
from hubseg.models.card import ModelCard
from hubseg.pipeline import DetectionOptions, detect
from hubseg.slide import ArraySlide
from hubseg.stain import StainNormalizer

# Saturated pink tissue everywhere (dense enough for Macenko's OD ≥ β rule) with dark purple "glomeruli".
TISSUE_BACKGROUND = (200, 140, 190)
DISKS = [(40, 40, 14, 70), (100, 90, 18, 90), (150, 30, 12, 60), (60, 140, 16, 80)]


@pytest.fixture
def tissue(tissue_image):
    return tissue_image(176, 176, disks=DISKS, background=TISSUE_BACKGROUND, seed=3)


def _maps(model, rgb, choice, tile_size=64):
    options = InferenceOptions(tile_size=tile_size, tissue_detection=False, stain_normalization=choice)
    maps = predict_maps(ArraySlide(rgb, 1.0), model, options=options)
    try:
        return np.array(maps.probability), np.array(maps.energy)
    finally:
        maps.close()


# --- model card ----------------------------------------------------------------------------------------------

def test_card_round_trips_stain_normalization(tmp_path):
    card = ModelCard(name="stained-v1", stain_normalization="reinhard")
    assert ModelCard.from_dict(json.loads(card.to_json())).stain_normalization == "reinhard"
    card.save(tmp_path)
    assert ModelCard.load(tmp_path).stain_normalization == "reinhard"
    old = card.to_dict()
    del old["stain_normalization"]  # cards written before the field existed
    assert ModelCard.from_dict(old).stain_normalization is None


def test_card_rejects_unknown_stain_normalization():
    with pytest.raises(InvalidInputError) as error:
        ModelCard(name="stained-v1", stain_normalization="vahadane")
    assert "macenko" in str(error.value) and "reinhard" in str(error.value)


def test_shipped_card_still_loads_without_normalization():
    from hubseg.models.registry import SHIPPED_MODELS_DIR

    cards = [ModelCard.load(path) for path in sorted(SHIPPED_MODELS_DIR.iterdir()) if (path / "card.json").is_file()]
    assert cards and all(card.stain_normalization is None for card in cards)


# --- detection -----------------------------------------------------------------------------------------------

def test_macenko_changes_what_the_model_sees(threshold_model_factory, tissue):
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    plain, _ = _maps(model, tissue, "none")
    normalised, _ = _maps(model, tissue, "macenko")
    assert plain.shape == normalised.shape
    assert np.abs(plain - normalised).max() > 0.05


def test_one_tile_sees_exactly_the_normalised_tile(threshold_model_factory, tissue):
    """With a single tile, detection with "macenko" == detection without it on the pre-normalised image."""
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    tile = np.ascontiguousarray(tissue[:64, :64])
    expected, expected_energy = _maps(model, StainNormalizer("macenko")(tile), "none")
    got, got_energy = _maps(model, tile, "macenko")
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got_energy, expected_energy, atol=1e-5)


def test_model_choice_follows_the_card(threshold_model_factory, tissue):
    plain_model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    stained_model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    stained_model.card.stain_normalization = "reinhard"
    np.testing.assert_array_equal(_maps(plain_model, tissue, "model")[0], _maps(plain_model, tissue, "none")[0])
    follows, _ = _maps(stained_model, tissue, "model")
    np.testing.assert_array_equal(follows, _maps(stained_model, tissue, "reinhard")[0])
    assert not np.array_equal(follows, _maps(stained_model, tissue, "none")[0])  # "none" overrides the card


def test_detect_builds_one_normalizer_per_call(threshold_model_factory, tissue, monkeypatch):
    import hubseg.stain

    built = []

    class CountingNormalizer(StainNormalizer):
        def __init__(self, *args, **kwargs):
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(hubseg.stain, "StainNormalizer", CountingNormalizer)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    result = detect(ArraySlide(tissue, 1.0), model,
                    options=DetectionOptions(stain_normalization="macenko", tissue_detection=False))
    assert result.tiles_total > 1
    assert built == [("macenko",)]


def test_invalid_choice_lists_valid_ones(threshold_model_factory, tissue):
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    with pytest.raises(InvalidInputError) as error:
        detect(ArraySlide(tissue, 1.0), model, options=DetectionOptions(stain_normalization="Macenko"))
    assert all(choice in str(error.value) for choice in ("model", "none", "macenko", "reinhard"))


# --- CLI -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["detect", "evaluate", "demo"])
def test_cli_flag_parses_on_detect_evaluate_demo(command):
    from hubseg import cli
    from hubseg.cli.detect import detection_options

    parser = cli.build_parser()
    required = {"detect": ["slide.tif", "-o", "out.geojson"], "evaluate": ["imgs", "masks", "--pixel-size", "0.5"], "demo": []}[command]
    args, _ = parser.parse_known_args([command, *required, "--stain-normalization", "macenko"])
    assert args.stain_normalization == "macenko"
    assert detection_options(args).stain_normalization == "macenko"
    default_args, _ = parser.parse_known_args([command, *required])
    assert detection_options(default_args).stain_normalization == "model"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *required, "--stain-normalization", "vahadane"])
