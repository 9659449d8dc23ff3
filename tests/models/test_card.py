import json

import pytest

from hubseg.errors import InvalidInputError
from hubseg.models.card import ModelCard, family_of


def test_round_trip_through_json_file(tmp_path):
    card = ModelCard(
        name="kidney-pas-v3",
        pixel_size_um=1.5,
        tile_size=256,
        energy_gate={"cutoff": 2.5, "auroc": 0.93, "true_energy": {"count": 3}, "false_energy": {"count": 1}},
        provenance={"seed": 1},
        metrics={"validation": {"f1": 0.9}},
    )
    path = card.save(tmp_path / "card.json")
    loaded = ModelCard.load(tmp_path)  # a folder holding card.json works too
    assert loaded == card
    assert json.loads(path.read_text())["energy_gate"]["cutoff"] == 2.5
    assert loaded.family == "kidney-pas"


def test_unknown_key_is_rejected_with_the_valid_keys():
    data = ModelCard(name="m-v1").to_dict()
    data["pixelsize"] = 1.0
    with pytest.raises(InvalidInputError, match="unknown model card key.*'pixelsize'.*valid keys: name"):
        ModelCard.from_dict(data)


@pytest.mark.parametrize(
    "field, value, message",
    [("pixel_size_um", 0, "pixel_size_um"), ("threshold", 1.5, "threshold"), ("tile_size", 4, "tile_size"),
     ("normalization", {"mean": [0.5]}, "normalization")],
)
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(InvalidInputError, match=message):
        ModelCard(name="m-v1", **{field: value})


def test_defaults_and_family():
    card = ModelCard(name="custom")
    assert card.architecture["decoder_attention_type"] == "scse"
    assert card.energy_gate is None and card.version == 1
    assert family_of("hubseg-pas-glomeruli-v12") == "hubseg-pas-glomeruli"
    assert family_of("no-version") == "no-version"
