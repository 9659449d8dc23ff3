"""scripts/bench_robustness.py end to end on a synthetic dataset with the deterministic threshold model.

Dark disks on a light background: the threshold model (dark = foreground) finds each disk exactly, so the
unshifted F1 is 1 and a mild rescale keeps every disk — which proves the shifted-frame objects are mapped
back onto the original masks correctly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hubseg.models.testing import make_threshold_model
from scripts import bench_robustness, common

PIXEL_SIZE = 2.0  # coarse, so the disks are big enough for the engine's 8 µm/px tissue detection
DISKS = [(70, 80, 28), (190, 170, 34), (80, 200, 24)]  # (x, y, radius) in px


@pytest.fixture(scope="module")
def bench():
    return bench_robustness


@pytest.fixture()
def disk_dataset(tmp_path):
    root = tmp_path / "disks"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[0:256, 0:256]
    for index in range(2):
        image = np.full((256, 256, 3), 235, np.uint8)
        mask = np.zeros((256, 256, 3), np.uint8)
        for x, y, r in DISKS[index:]:
            disk = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
            image[disk] = (60, 40, 90)
            mask[disk] = (255, 0, 0)  # red on black, as in the AIDPATH masks
        Image.fromarray(image).save(root / "images" / f"t{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"t{index}.png")
    return root


def test_bench_scores_perfect_detections_and_maps_rescaled_objects_back(bench, disk_dataset, tmp_path, capsys):
    data_dir = tmp_path / "data"
    make_threshold_model(data_dir, pixel_size_um=2.0, tile_size=64, energy_gate={"cutoff": 0.0})
    code = bench.main([
        "--dataset", str(disk_dataset), "--pixel-size", str(PIXEL_SIZE), "--data-dir", str(data_dir),
        "--model", "threshold-test-v1", "--conditions", "none", "scale-3.0", "hed-0.1",
        "--stain-norm", "none", "--json", "--quiet",
    ])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["condition"]: row for row in report["conditions"]}
    assert list(rows) == ["none", "scale-3.0", "hed-0.1"]
    unshifted = rows["none"]["raw"]
    assert (unshifted["tp"], unshifted["fp"], unshifted["fn"]) == (5, 0, 0)
    assert unshifted["f1"] == 1.0 and unshifted["dice"] > 0.95
    # Gate at 0: no object is uncertain, so gated figures equal the ungated ones.
    assert unshifted["gated"]["f1"] == 1.0 and unshifted["uncertain"] == 0
    rescaled = rows["scale-3.0"]["raw"]
    assert rescaled["f1"] == 1.0 and rescaled["dice"] > 0.9  # objects came back onto the original frame
    assert rows["scale-3.0"]["raw"]["f1_drop"] == pytest.approx(0.0)
    assert report["held_out"] is False and "seen in training" in report["held_out_note"]
    assert report["goals"]["f1_drop_met"] is True


def test_bench_table_says_when_tiles_were_seen_in_training(bench, disk_dataset, tmp_path, capsys):
    data_dir = tmp_path / "data"
    make_threshold_model(data_dir, pixel_size_um=2.0, tile_size=64)
    assert bench.main([
        "--dataset", str(disk_dataset), "--pixel-size", str(PIXEL_SIZE), "--data-dir", str(data_dir),
        "--model", "threshold-test-v1", "--conditions", "none", "jpeg-30", "--limit", "1",
        "--stain-norm", "macenko", "--quiet",
    ]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("| shift | F1 |")
    assert "| none (unshifted) |" in table and "| jpeg-30 |" in table
    assert "NOT held out" in table and "seen in training" in table
    assert "n/a (model has no energy gate)" in table


def test_scale_shift_passes_the_matching_pixel_size(bench):
    _, shift = common.make_shift("scale-1.0", seed=0)
    rgb = np.zeros((100, 200, 3), np.uint8)
    shifted = shift(rgb, 0.5, "t")
    assert shifted.rgb.shape == (50, 100, 3)
    assert shifted.pixel_size_um == pytest.approx(1.0)
    assert shifted.to_original == pytest.approx(2.0)


def test_unknown_condition_lists_the_valid_forms(bench):
    with pytest.raises(SystemExit, match="valid: none, hed-STRENGTH"):
        common.make_shift("rotate-90", seed=0)


def test_held_out_mode_trains_cached_fold_models_from_the_card(bench, disk_dataset, tmp_path, capsys):
    """--held-out: one fold model per CV fold in the card, retrained with the card's recipe, cached."""
    import torch

    from hubseg.models.architectures import build_module, smp_unet_architecture
    from hubseg.models.card import ModelCard
    from hubseg.models.registry import ModelRegistry

    decoder = [16, 16, 16, 16, 16]
    architecture = smp_unet_architecture("mobilenet_v2", decoder_channels=decoder)
    recipe = {"encoder": "mobilenet_v2", "decoder_channels": decoder, "imagenet": False, "pixel_size_um": 2.0,
              "tile_size": 64, "train_tile_size": 64, "epochs": 1, "batch_size": 2, "val_every": 1,
              "random_tiles": 0.0, "seed": 0, "family": "disk"}
    card = ModelCard(
        name="disk-v1", architecture=architecture, pixel_size_um=2.0, tile_size=64,
        provenance={"config": recipe},
        metrics={"cross_validation": {"folds": [{"fold": 1, "held_out": ["t0"]}, {"fold": 2, "held_out": ["t1"]}]}},
    )
    torch.manual_seed(0)
    data_dir = tmp_path / "data"
    ModelRegistry(data_dir).register(build_module(architecture).state_dict(), card)
    argv = ["--dataset", str(disk_dataset), "--pixel-size", str(PIXEL_SIZE), "--data-dir", str(data_dir),
            "--model", "disk-v1", "--held-out", "--fold-cache", str(tmp_path / "folds"),
            "--conditions", "none", "--stain-norm", "none", "--json", "--quiet"]

    assert bench.main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["held_out"] is True and "fold model" in report["held_out_note"]
    assert sorted(report["tiles"]) == ["t0.png", "t1.png"]
    assert captured.err.count("training fold model") == 2
    folds = sorted(p.name for p in (tmp_path / "folds").glob("*/models/*"))
    assert folds == ["disk-fold1-v1", "disk-fold2-v1"]
    fold_card = ModelCard.load(next((tmp_path / "folds").glob("*/models/disk-fold1-v1")))
    assert fold_card.metrics["validation"]["images"] == ["t0"]

    assert bench.main(argv) == 0  # second run: fold models come from the cache
    assert "training fold model" not in capsys.readouterr().err


def test_held_out_mode_uses_the_saved_fold_models_with_their_own_gates(bench, disk_dataset, tmp_path, capsys):
    """Fold models saved by train_default.py (sha256 recorded in the card) are run as they are, not retrained,
    and each applies the card's gate at its own energy scale (its card's cutoff)."""
    from hubseg.models.card import ModelCard
    from hubseg.models.registry import ModelRegistry

    saved = tmp_path / "cv"
    fold1 = make_threshold_model(saved, name="disk-fold1-v1", pixel_size_um=2.0, tile_size=64,
                                 energy_gate={"cutoff": 1e9, "z_cutoff": 0.5})  # every object uncertain
    fold2 = make_threshold_model(saved, name="disk-fold2-v1", pixel_size_um=2.0, tile_size=64,
                                 energy_gate={"cutoff": 0.0, "z_cutoff": 0.5})  # none uncertain
    data_dir = tmp_path / "data"
    shipped = make_threshold_model(data_dir, name="disk-v1", pixel_size_um=2.0, tile_size=64,
                                   energy_gate={"cutoff": 0.0, "z_cutoff": 0.5})
    card = ModelCard.load(ModelRegistry(data_dir).path("disk-v1"))
    card.provenance = {"config": {"epochs": 1}}
    card.metrics = {"cross_validation": {"folds": [
        {"fold": 1, "held_out": ["t0"], "weights_sha256": fold1.weights_sha256},
        {"fold": 2, "held_out": ["t1"], "weights_sha256": fold2.weights_sha256},
    ]}}
    card.save(ModelRegistry(data_dir).path("disk-v1") / "card.json")
    assert shipped.family == "disk"
    argv = ["--dataset", str(disk_dataset), "--pixel-size", str(PIXEL_SIZE), "--data-dir", str(data_dir),
            "--model", "disk-v1", "--held-out", "--fold-models", str(saved), "--fold-cache", str(tmp_path / "cache"),
            "--conditions", "none", "--stain-norm", "none", "--json", "--quiet"]
    assert bench.main(argv) == 0
    captured = capsys.readouterr()
    assert "training fold model" not in captured.err
    report = json.loads(captured.out)
    assert "saved" in report["held_out_note"]
    unshifted = report["conditions"][0]["raw"]
    assert (unshifted["tp"], unshifted["fp"], unshifted["fn"]) == (5, 0, 0)
    assert unshifted["uncertain"] == 3  # t0's three disks, under fold 1's own cut-off; t1's two are confident
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*/models/*"))

    assert bench.main(argv + ["--write-card"]) == 0
    capsys.readouterr()
    section = ModelCard.load(ModelRegistry(data_dir).path("disk-v1")).metrics["robustness"]
    assert section["goals_met"]["max_f1_drop"] is True
    assert [row["shift"] for row in section["held_out"]] == ["none"]
    assert section["held_out"][0]["f1"] == 1.0 and section["held_out"][0]["uncertain"] == 3
    # the weights (and so the card's sha256) are untouched
    assert ModelCard.load(ModelRegistry(data_dir).path("disk-v1")).weights_sha256 == shipped.weights_sha256
