"""``hubseg adapt``'s teacher-pass cap and safety check: a real tiny teacher, generated slides, real training."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from hubseg.cli import main
from hubseg.models.registry import ModelRegistry
from tests.support.training import corrupt_pseudo_labels, synthetic_tile


@pytest.fixture
def setup(teacher_dir, tmp_path, tiff_writer):
    data_dir = tmp_path / "data"
    shutil.copytree(teacher_dir[0], data_dir)
    # 4 µm/px, 512 px: 4 × 4 teacher tiles of 4 × 64 model px at 2 µm/px (128 level-0 px, the size of the tiles
    # the teacher was trained and calibrated on; with smaller teacher tiles most disks would be cut by an edge)
    rgb, _ = synthetic_tile(np.random.default_rng(11), 512, disks=24)
    slide = tiff_writer(tmp_path / "lab.ome.tif", rgb, pixel_size_um=4.0)
    return data_dir, teacher_dir[1], slide


def _adapt(data_dir, *argv):
    return main(["adapt", *map(str, argv), "--teacher-tile", "4", "--data-dir", str(data_dir), "--device", "cpu",
                 "--threads", "1"])


def test_sample_windows_caps_and_spreads_over_tissue_only():
    from hubseg.slide import ArraySlide
    from hubseg.training.teacher_tiles import TeacherCap, sample_windows, window_side_level0

    rgb = np.full((800, 1200, 3), 245, np.uint8)  # glass ...
    rgb[:, :600] = (200, 120, 170)  # ... with tissue on the left half only
    slide = ArraySlide(rgb, 2.0)
    card = SimpleNamespace(tile_size=25, pixel_size_um=2.0)  # teacher tile: 50 level-0 px
    assert window_side_level0(slide, card) == 50
    windows = sample_windows(slide, card, 10)
    assert len(windows) == 10 and windows == sample_windows(slide, card, 10)  # capped, deterministic
    assert all(x + w <= 600 + 50 for x, _, w, _ in windows)  # tissue tiles only (the mask is dilated by 20 µm)
    rows = sorted({y for _, y, _, _ in windows})
    assert rows[0] <= 100 and rows[-1] >= 650  # spread from the top to the bottom of the slide
    assert len(sample_windows(slide, card, 10_000)) == 12 * 16  # the whole tissue half: 12 × 16 candidates (+ edge)
    assert sample_windows(ArraySlide(rgb[:40, :40], 2.0), card, 10) is None  # no larger than one tile: whole
    cap = TeacherCap()  # the defaults: 16 per slide, 200 in all
    assert cap.for_slides(1) == 16 and cap.for_slides(40) == 5 and cap.for_slides(1000) == 1


def test_teacher_pass_is_capped_and_progress_names_the_slide(setup, tmp_path, capsys):
    from hubseg.training.adapt_report import parse_progress
    from hubseg.training.selftrain import SelfTrainConfig, self_train
    from hubseg.training.teacher_tiles import TeacherCap
    from hubseg.training.trainer import TrainConfig

    data_dir, teacher, slide = setup
    second = tmp_path / "lab-2.ome.tif"
    shutil.copy(slide, second)
    messages = []
    config = SelfTrainConfig(epochs=1, cap=TeacherCap(per_slide=8, max_total=10, window_tiles=4),
                             train=TrainConfig(lr=1e-6, freeze_bn=True, device="cpu", batch_size=4))
    card = self_train([slide, second], ModelRegistry(data_dir), config, base_model=teacher,
                      progress=lambda d, t, m: messages.append((d, t, m)))[-1]
    tiles = card.provenance["self_training"]["teacher_tiles"]
    assert tiles["per_slide"] == 5 and tiles["tiles"] == 10  # max_total 10 over 2 slides beats 8 per slide
    teacher_steps = [(d, t, parse_progress(m)) for d, t, m in messages if (parse_progress(m) or {}).get("tile")]
    assert [p["slide"] for _, _, p in teacher_steps] == ["lab.ome.tif"] * 5 + ["lab-2.ome.tif"] * 5
    assert [d for d, _, _ in teacher_steps] == list(range(10)) and {t for _, t, _ in teacher_steps} == {10}
    phases = [parse_progress(m)["phase"] for _, _, m in messages if parse_progress(m)]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "teacher", "pseudo-labels", "training", "calibrating"]


def test_a_student_trained_on_corrupted_pseudo_labels_is_flagged_and_not_activated(setup, monkeypatch, capsys):
    from hubseg.training.pseudolabels import PseudoLabelSource

    data_dir, teacher, slide = setup
    registry = ModelRegistry(data_dir)
    registry.activate(teacher)
    honest_load = PseudoLabelSource.load
    corrupt_pseudo_labels(monkeypatch)
    assert _adapt(data_dir, slide, "--model", teacher, "--epochs", "8", "--lr", "5e-3", "--batch-size", "4",
                  "--name", "corrupted-v1", "--activate") == 0
    out = capsys.readouterr().out
    safety = registry.card("corrupted-v1").provenance["self_training"]["safety"]
    assert safety["held_back_images"] >= 2 and safety["teacher_confident_objects"] >= 1
    assert safety["verdict"] == "flagged" and safety["reasons"], safety
    assert safety["activate_by_default"] is False
    assert "flagged" in out and "NOT activated" in out
    assert registry.active_name() == teacher  # --activate did not activate the flagged student

    monkeypatch.setattr(PseudoLabelSource, "load", honest_load)
    # the control: a student kept next to its teacher (tiny learning rate, the teacher's BatchNorm statistics)
    assert _adapt(data_dir, slide, "--model", teacher, "--epochs", "1", "--lr", "1e-6", "--freeze-bn",
                  "--name", "honest-v1", "--activate") == 0
    safety = registry.card("honest-v1").provenance["self_training"]["safety"]
    assert safety["verdict"] == "ok", safety
    assert safety["student"]["recall"] >= safety["teacher"]["recall"] - 0.35
    assert registry.active_name() == "honest-v1"
