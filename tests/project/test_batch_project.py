"""`hubseg batch --project`: a real QuPath project's images (QuPath 0.6.0 through paquo, see conftest.py) go
through the batch with QuPath's pixel calibration, and nothing is written into the project."""

from __future__ import annotations

import json

import pytest

from tests.support.paquo import DISKS, new_project

pytestmark = [pytest.mark.paquo, pytest.mark.usefixtures("qupath_runtime", "one_torch_thread")]


def test_batch_over_a_project_reads_it_without_writing(tmp_path, slides, data_dir, cli):
    from hubseg.batch.inputs import collect_inputs

    project = new_project(tmp_path / "proj", [slides / name for name in DISKS])
    before = {p: p.stat().st_mtime_ns for p in project.parent.rglob("*")}
    items = collect_inputs(project=str(project))
    assert sorted(item.stem for item in items) == sorted(name.split(".")[0] for name in DISKS)
    assert all(item.pixel_size_um == pytest.approx(0.5) for item in items)  # QuPath's calibration

    out = tmp_path / "out"
    code, stdout, err = cli("batch", "--project", project, "-o", out, "--data-dir", data_dir, "--model", "threshold-test-v1",
                            "--device", "cpu", "--quiet")
    assert code == 0, err
    assert f"{len(DISKS)} slides: {len(DISKS)} ok" in stdout
    for name, disks in DISKS.items():
        collection = json.loads((out / f"{name.split('.')[0]}.geojson").read_text(encoding="utf-8"))
        assert len(collection["features"]) == len(disks)
    assert {p: p.stat().st_mtime_ns for p in project.parent.rglob("*")} == before
