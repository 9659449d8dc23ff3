"""scripts/bench_robustness.py end to end on a synthetic dataset with the deterministic threshold model.

Dark disks on a light background: the threshold model (dark = foreground) finds each disk exactly, so the
unshifted F1 is 1 and a mild rescale keeps every disk — which proves the shifted-frame objects are mapped
back onto the original masks correctly.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hubseg.models.testing import make_threshold_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_robustness.py"
PIXEL_SIZE = 2.0  # coarse, so the disks are big enough for the engine's 8 µm/px tissue detection
DISKS = [(70, 80, 28), (190, 170, 34), (80, 200, 24)]  # (x, y, radius) in px


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_robustness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load_bench()


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
    _, shift = bench.make_shift("scale-1.0", seed=0)
    rgb = np.zeros((100, 200, 3), np.uint8)
    shifted = shift(rgb, 0.5, "t")
    assert shifted.rgb.shape == (50, 100, 3)
    assert shifted.pixel_size_um == pytest.approx(1.0)
    assert shifted.to_original == pytest.approx(2.0)


def test_unknown_condition_lists_the_valid_forms(bench):
    with pytest.raises(SystemExit, match="valid: none, hed-STRENGTH"):
        bench.make_shift("rotate-90", seed=0)
