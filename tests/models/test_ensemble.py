"""Ensembles: cards, resolution by sha256, inference (tiled == untiled), agreement, references."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hubseg.errors import Cancelled, ConflictError, InvalidInputError, NotFoundError
from hubseg.inference import InferenceOptions, predict_maps
from hubseg.models.card import ModelCard
from hubseg.models.ensemble import EnsembleModel, ensemble_card, is_ensemble, members_digest
from hubseg.models.registry import load_model_folder
from hubseg.models.testing import make_ensemble, make_threshold_model, make_tiny_model
from hubseg.pipeline import DetectionOptions, detect
from hubseg.slide import ArraySlide


def _threshold_members(registry, levels=(0.5, 0.5, 0.5), scales=(12.0, 6.0, 20.0)):
    return [make_threshold_model(registry, f"thr-{i}-v1", scale=s, level=lv)
            for i, (s, lv) in enumerate(zip(scales, levels))]


def test_ensemble_card_lists_members_by_name_and_sha256(registry):
    members = [make_tiny_model(registry, f"tiny-s{i}-v1", seed=i) for i in range(2)]
    card = make_ensemble(registry, members, name="ens-v1")
    stored = json.loads((registry.path("ens-v1") / "card.json").read_text())
    assert stored["architecture"]["kind"] == "ensemble"
    assert stored["architecture"]["members"] == [{"name": m.name, "weights_sha256": m.weights_sha256} for m in members]
    assert stored["weights_sha256"] == members_digest(stored["architecture"]["members"]) == card.weights_sha256
    assert not (registry.path("ens-v1") / "weights.safetensors").exists()
    assert is_ensemble(registry.card("ens-v1")) and "ens-v1" in registry.names()
    model = registry.load("ens-v1", device="cpu")
    assert isinstance(model, EnsembleModel) and [m.name for m in model.members] == ["tiny-s0-v1", "tiny-s1-v1"]


def test_ensemble_probability_is_the_mean_and_energy_uses_the_mean_logits(registry):
    members = [make_tiny_model(registry, f"tiny-s{i}-v1", seed=i) for i in range(3)]
    make_ensemble(registry, members, name="ens-v1")
    ensemble = registry.load("ens-v1", device="cpu")
    tiles = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    prob, energy = ensemble.predict(tiles)
    singles = [registry.load(m.name, device="cpu") for m in members]
    np.testing.assert_allclose(prob, np.mean([m.predict(tiles)[0] for m in singles], axis=0), atol=1e-6)
    mean_logits = sum(m.logits(m.preprocess(tiles)) for m in singles) / 3
    np.testing.assert_allclose(energy, singles[0].negative_energy(mean_logits).numpy(), atol=1e-5)


def test_members_resolve_by_sha256_with_clear_errors(registry, tmp_path):
    members = _threshold_members(registry)
    card = ensemble_card("ens-v1", members)
    # a renamed copy of a member is found by its sha256
    import shutil

    shutil.copytree(registry.path("thr-2-v1"), registry.user_dir / "renamed-v1")
    shutil.rmtree(registry.path("thr-2-v1"))
    registry.register_ensemble(card)
    assert [m.card.weights_sha256 for m in registry.load("ens-v1", device="cpu").members] == [m.weights_sha256 for m in members]
    # a member registered under its name with other weights, and one that is gone, are named in the error
    shutil.rmtree(registry.user_dir / "renamed-v1")
    with pytest.raises(NotFoundError, match="member 'thr-2-v1'.*not registered; registered models: .*thr-0-v1"):
        registry.load("ens-v1", device="cpu")
    make_threshold_model(registry, "thr-2-v1", scale=3.0)
    with pytest.raises(InvalidInputError, match="member 'thr-2-v1' is registered with other weights"):
        registry.load("ens-v1", device="cpu")
    bad = ensemble_card("ens-v2", members[:1])
    bad.architecture["members"][0]["weights_sha256"] = "abc"
    with pytest.raises(InvalidInputError, match=r"members\[0\].weights_sha256"):
        registry.register_ensemble(bad)
    with pytest.raises(ConflictError, match="already exists"):
        registry.register_ensemble(ensemble_card("ens-v1", members[:1]))
    with pytest.raises(InvalidInputError, match="is an ensemble: it has no weights; use register_ensemble"):
        registry.register({}, ensemble_card("ens-v3", members[:1]))


def test_members_must_share_one_pixel_size_and_not_nest(registry):
    a = make_threshold_model(registry, "thr-a-v1", pixel_size_um=1.0)
    b = make_threshold_model(registry, "thr-b-v1", pixel_size_um=2.0, scale=6.0)
    with pytest.raises(InvalidInputError, match="member 'thr-b-v1' works at 2.0 µm/px.*one pixel size"):
        registry.register_ensemble(ensemble_card("ens-v1", [a, b]))
    inner = make_ensemble(registry, [a], name="inner-v1")
    with pytest.raises(InvalidInputError, match="itself an ensemble"):
        registry.register_ensemble(ensemble_card("outer-v1", [inner]))


def test_folder_load_finds_members_beside_the_ensemble(registry):
    members = _threshold_members(registry)
    make_ensemble(registry, members, name="ens-v1")
    model = load_model_folder(registry.path("ens-v1") / "card.json", device="cpu")
    assert len(model.members) == 3


@pytest.mark.parametrize("tta", ["none", "flips"])
def test_tiled_equals_untiled_with_an_ensemble(registry, tissue_image, tta):
    make_ensemble(registry, _threshold_members(registry, levels=(0.5, 0.45, 0.55)), name="ens-v1")
    model = registry.load("ens-v1", device="cpu")
    slide = ArraySlide(tissue_image(300, 420, disks=[(64, 64, 30, 40), (200, 150, 45, 90), (380, 250, 35, 20)], seed=3), 1.0)
    tiled = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, tta=tta, tissue_detection=False,
                                                                batch_size=3))
    untiled = predict_maps(slide, model, options=InferenceOptions(tile_size=448, overlap=0, tta=tta, tissue_detection=False))
    assert tiled.tiles_total > 20 and untiled.tiles_total == 1
    np.testing.assert_allclose(tiled.probability, untiled.probability, atol=1e-5)
    np.testing.assert_allclose(tiled.energy, untiled.energy, atol=1e-5)
    assert tiled.probability.max() > 0.9 and tiled.probability.min() < 0.1  # objects and background both present


def test_ensemble_keeps_progress_cancel_and_disk_backed_maps(registry, tissue_image):
    make_ensemble(registry, _threshold_members(registry), name="ens-v1")
    model = registry.load("ens-v1", device="cpu")
    slide = ArraySlide(tissue_image(300, 420, disks=[(64, 64, 30, 40)]), 1.0)
    seen = []
    ram = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, batch_size=4, disk_backed=False),
                       progress=lambda d, t, m: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) > 3
    disk = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, batch_size=4, disk_backed=True))
    np.testing.assert_array_equal(np.asarray(disk.probability), ram.probability)
    disk.close()
    calls = []
    with pytest.raises(Cancelled):
        predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, batch_size=2),
                     should_cancel=lambda: calls.append(1) or len(calls) > 3)


def test_agreement_when_members_disagree_on_exactly_one_object(registry, tissue_image):
    # Disk grey 40 is darker than every member's level; grey 100 (mean RGB ≈ 0.40) only than levels 0.5.
    members = _threshold_members(registry, levels=(0.5, 0.5, 0.3), scales=(12.0, 12.0, 12.0))
    make_ensemble(registry, members, name="ens-v1")
    model = registry.load("ens-v1", device="cpu")
    slide = ArraySlide(tissue_image(256, 384, disks=[(80, 120, 40, 40), (280, 120, 40, 100)]), 1.0)
    result = detect(slide, model, options=DetectionOptions(tile_size=64, overlap=16, min_area_um2=50))
    assert len(result.objects) == 2
    by_x = sorted(result.objects, key=lambda o: o.centroid[0])
    assert by_x[0].extra["agreement_fraction"] == pytest.approx(1.0)
    assert by_x[1].extra["agreement_fraction"] == pytest.approx(2 / 3)
    assert by_x[1].extra["agreement_std"] < by_x[0].extra["agreement_std"] <= 1.0
    features = result.to_feature_collection()["features"]
    values = sorted(f["properties"]["measurements"]["hubseg agreement"] for f in features)
    assert values == pytest.approx(sorted(o.agreement for o in result.objects))
    single = detect(slide, registry.load("thr-0-v1", device="cpu"), options=DetectionOptions(tile_size=64, min_area_um2=50))
    assert all("hubseg agreement" not in f["properties"]["measurements"]
               for f in single.to_feature_collection()["features"])


def test_ensemble_model_has_no_single_module(registry):
    make_ensemble(registry, _threshold_members(registry)[:1], name="ens-v1")
    with pytest.raises(InvalidInputError, match="is an ensemble"):
        registry.load("ens-v1", device="cpu").module


def test_ensemble_card_round_trips(registry):
    card = make_ensemble(registry, _threshold_members(registry)[:2], name="ens-v1")
    assert ModelCard.from_dict(card.to_dict()).architecture == card.architecture


def test_a_member_of_an_ensemble_cannot_be_deleted(registry):
    members = _threshold_members(registry)[:2]
    make_ensemble(registry, members, name="ens-v1")
    with pytest.raises(ConflictError, match="member of the ensemble\\(s\\) ens-v1; delete those first"):
        registry.delete("thr-0-v1")
    registry.delete("ens-v1")
    registry.delete("thr-0-v1")
    assert registry.names() == ["thr-1-v1", "thr-2-v1"]


def test_cli_detect_and_models_list_with_an_ensemble(registry, tiff_writer, tissue_image, tmp_path, capsys):
    from hubseg import cli

    make_ensemble(registry, _threshold_members(registry), name="ens-v1")
    slide = tiff_writer(tmp_path / "s.ome.tif", tissue_image(256, 256, disks=[(120, 120, 40, 40)]), 1.0)
    out = tmp_path / "out.geojson"
    data = str(registry.data_dir)
    assert cli.main(["detect", str(slide), "--model", "ens-v1", "--data-dir", data, "-o", str(out), "--quiet",
                     "--references", "1"]) == 0
    collection = json.loads(out.read_text())
    assert collection["properties"]["model"]["name"] == "ens-v1"
    [feature] = collection["features"]
    assert feature["properties"]["measurements"]["hubseg agreement"] == 1.0
    assert feature["properties"]["measurements"]["hubseg reference rank"] == 1
    assert cli.main(["models", "list", "--data-dir", data]) == 0
    assert "ens-v1" in capsys.readouterr().out
