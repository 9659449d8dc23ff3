"""Stain normalisation (torchstain Macenko/Reinhard with the shipped PAS reference) and HED stain shifts."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from hubseg.errors import InvalidInputError
from hubseg.stain import (
    DEFAULT_REFERENCE_PATH,
    METHODS,
    StainNormalizer,
    fit_reference,
    hed_shift,
    load_reference,
    tissue_fraction,
)

# A tile other than the one the shipped reference was fitted on (10177), dense enough for stain estimates.
OTHER_TILE = "10150.png"


@pytest.fixture(scope="module")
def real_tile(shared_data):
    rgb = np.asarray(Image.open(shared_data / "images" / OTHER_TILE).convert("RGB"))
    return np.ascontiguousarray(rgb[:512, :512])  # small: keeps the test fast


def _stain_distance(params_a: dict, params_b: dict, method: str) -> float:
    if method == "macenko":
        a, b = params_a["macenko"], params_b["macenko"]
        return float(np.abs(np.subtract(a["stain_matrix"], b["stain_matrix"])).sum()
                     + np.abs(np.subtract(a["max_concentrations"], b["max_concentrations"])).sum())
    a, b = params_a["reinhard"], params_b["reinhard"]
    return float(np.abs(np.subtract(a["lab_means"], b["lab_means"])).sum()
                 + np.abs(np.subtract(a["lab_stds"], b["lab_stds"])).sum())


def test_shipped_reference_is_small_parameter_json():
    reference = load_reference()
    assert DEFAULT_REFERENCE_PATH.stat().st_size < 4096  # fitted parameters, not an image copy
    assert np.asarray(reference["macenko"]["stain_matrix"]).shape == (3, 2)
    assert len(reference["reinhard"]["lab_means"]) == 3
    assert "CC BY 4.0" in reference["attribution"]


@pytest.mark.parametrize("method", METHODS)
def test_normaliser_on_real_tile_moves_stains_toward_reference(real_tile, method):
    # Push the tile away from the reference with a strong HED shift, then normalise it back.
    shifted = hed_shift(real_tile, 0.3, rng=7)
    normalised = StainNormalizer(method)(shifted)

    assert normalised.shape == shifted.shape and normalised.dtype == np.uint8
    assert not np.array_equal(normalised, shifted)
    reference = load_reference()
    before = _stain_distance(fit_reference(shifted), reference, method)
    after = _stain_distance(fit_reference(normalised), reference, method)
    assert after < 0.5 * before, (method, before, after)


@pytest.mark.parametrize("method", METHODS)
def test_blank_tile_falls_back_to_identity_with_debug_log(method, caplog):
    blank = np.full((128, 96, 3), 244, dtype=np.uint8)
    with caplog.at_level(logging.DEBUG, logger="hubseg.stain"):
        out = StainNormalizer(method)(blank)
    assert out.shape == blank.shape and out.dtype == np.uint8
    assert np.array_equal(out, blank)
    assert out is not blank
    assert "tile unchanged" in caplog.text


def test_flat_coloured_tile_falls_back_instead_of_crashing(caplog):
    flat = np.zeros((64, 64, 3), dtype=np.uint8)
    flat[:] = (150, 60, 150)  # "tissue" by optical density, but no stain contrast at all
    with caplog.at_level(logging.DEBUG, logger="hubseg.stain"):
        out = StainNormalizer("reinhard")(flat)
    assert np.array_equal(out, flat)
    assert "tile unchanged" in caplog.text


def test_unknown_method_lists_valid_ones():
    with pytest.raises(InvalidInputError) as info:
        StainNormalizer("vahadane")
    message = str(info.value)
    assert "vahadane" in message
    for method in METHODS:
        assert method in message


def test_wrong_input_type_says_what_is_expected():
    with pytest.raises(InvalidInputError, match="uint8 H×W×3"):
        StainNormalizer("macenko")(np.zeros((8, 8, 3), dtype=np.float32))


def test_reference_can_be_fitted_from_a_tile(real_tile):
    normaliser = StainNormalizer("reinhard", reference=real_tile)
    assert normaliser.reference["source"] == "array"
    out = normaliser(real_tile)
    # Normalising a tile to itself changes it by rounding only.
    assert np.abs(out.astype(int) - real_tile.astype(int)).mean() < 2.0


def test_hed_shift_strength_zero_is_identity():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    out = hed_shift(rgb, 0.0, rng=1)
    assert np.array_equal(out, rgb) and out is not rgb


def test_hed_shift_is_deterministic_with_a_seed_and_grows_with_strength():
    rng = np.random.default_rng(0)
    rgb = rng.integers(60, 230, size=(64, 64, 3), dtype=np.uint8)
    a = hed_shift(rgb, 0.2, rng=42)
    b = hed_shift(rgb, 0.2, rng=np.random.default_rng(42))
    c = hed_shift(rgb, 0.2, rng=43)
    assert a.shape == rgb.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    changes = [np.abs(hed_shift(rgb, s, rng=5).astype(int) - rgb).mean() for s in (0.05, 0.2, 0.5)]
    assert changes[0] < changes[1] < changes[2]


def test_hed_shift_rejects_out_of_range_strength():
    with pytest.raises(InvalidInputError, match="strength"):
        hed_shift(np.zeros((4, 4, 3), dtype=np.uint8), 1.5, rng=0)


def test_tissue_fraction_on_blank_and_dark():
    assert tissue_fraction(np.full((8, 8, 3), 250, dtype=np.uint8)) == 0.0
    assert tissue_fraction(np.full((8, 8, 3), 80, dtype=np.uint8)) == 1.0
