"""``hubseg batch --adapt``: adapt on a bounded, spread sample of the cohort, then detect every slide with the
adapted model (a real tiny teacher trained here, generated slides, real training on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hubseg.cli import main
from hubseg.models.registry import ModelRegistry
from tests.support.training import corrupt_pseudo_labels, make_teacher, synthetic_tile

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, tiff_writer):
    base = tmp_path_factory.mktemp("batch-adapt")
    teacher = make_teacher(base / "data")
    slides = base / "slides"
    slides.mkdir()
    for index in range(3):  # 4 µm/px, 384 px: 3 × 3 teacher tiles of 4 model tiles each
        rgb, _ = synthetic_tile(np.random.default_rng(20 + index), 384, disks=14)
        tiff_writer(slides / f"case-{index}.ome.tif", rgb, pixel_size_um=4.0)
    return base / "data", teacher, slides


def test_batch_adapts_on_a_spread_sample_then_detects_every_slide_with_it(cohort, tmp_path, capsys):
    import shutil

    data_dir, teacher, slides = cohort
    work = tmp_path / "data"
    shutil.copytree(data_dir, work)
    out = tmp_path / "cohort-2026"
    # A tiny learning rate and the teacher's BatchNorm statistics keep the 1-epoch student next to its teacher, so
    # its safety check passes and the batch uses it: this checks the plumbing, not learning.
    code = main(["batch", str(slides), "-o", str(out), "--model", teacher, "--device", "cpu", "--data-dir", str(work),
                 "--tta", "none", "--quiet", "--adapt", "--adapt-slides", "2", "--tiles-per-slide", "5", "--teacher-tile", "4",
                 "--adapt-epochs", "1", "--adapt-lr", "1e-6", "--adapt-freeze-bn", "--threads", "1"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    registry = ModelRegistry(work)
    adapted = [c for c in registry.list() if c.provenance.get("self_training")]
    assert len(adapted) == 1
    card = adapted[0]
    record = card.provenance["self_training"]
    assert record["cohort"] == {"name": "cohort-2026", "slides": 3, "adapted_on": 2}
    # the sample spreads over the cohort (first and last slide), each capped at 5 of its 9 teacher tiles
    assert [Path(i["path"]).name for i in record["images"]] == ["case-0.ome.tif", "case-2.ome.tif"]
    assert record["teacher_tiles"]["tiles"] == 10 and record["teacher_tiles"]["per_slide"] == 5
    assert record["safety"]["verdict"] == "ok", record["safety"]
    assert f"adapted {card.name} on 2 of 3 slides" in printed.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["name"] == card.name and summary["adaptation"]["model"] == card.name
    assert summary["adaptation"]["used_for_detection"] is True
    assert len(summary["slides"]) == 3 and all(row["status"] == "ok" for row in summary["slides"])
    for index in range(3):  # every slide detected with the adapted model
        collection = json.loads((out / f"case-{index}.geojson").read_text())
        assert collection["properties"]["model"]["name"] == card.name
    assert registry.active_name() != card.name  # a batch never activates


def test_a_flagged_adaptation_is_not_used(cohort, tmp_path, capsys, monkeypatch):
    import shutil

    data_dir, teacher, slides = cohort
    work = tmp_path / "data"
    shutil.copytree(data_dir, work)
    corrupt_pseudo_labels(monkeypatch)
    out = tmp_path / "out"
    code = main(["batch", str(slides / "case-1.ome.tif"), str(slides / "case-2.ome.tif"), "-o", str(out),
                 "--model", teacher, "--device", "cpu", "--data-dir", str(work), "--quiet", "--tta", "none", "--adapt",
                 "--teacher-tile", "4", "--adapt-epochs", "8", "--adapt-lr", "5e-3", "--threads", "1"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["adaptation"]["safety"]["verdict"] == "flagged"
    assert summary["adaptation"]["used_for_detection"] is False
    assert summary["model"]["name"] == teacher and "flagged by its safety check" in printed.err
