"""hubseg batch with the local process pool: outputs equal to hubseg detect, failures as rows, a killed worker's
slide retried, --resume after the whole run was killed, Ctrl-C cleanup."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CORRUPT, DETECT_ARGS, GOOD_SLIDES, assert_batch_outputs, assert_no_temp_files


def batch_config(out_dir: Path, data_dir: Path):
    from hubseg.batch.runner import model_spec
    from hubseg.batch.worker import BatchConfig, options_dict
    from hubseg.pipeline import DetectionOptions

    return BatchConfig(out_dir=str(out_dir), model=model_spec("threshold-test-v1", str(data_dir)),
                       options=options_dict(DetectionOptions(tta="flips")))


def test_cli_batch_matches_detect_and_reports_the_corrupt_slide(batch_slides, batch_data_dir, detect_reference, tmp_path, capsys):
    from hubseg.cli import main

    out = tmp_path / "out"
    code = main(["batch", str(batch_slides / "*.ome.tif"), "-o", str(out), *DETECT_ARGS, "--data-dir", str(batch_data_dir),
                 "--workers", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of 5 slides failed" in captured.err
    assert "5 slides: 4 ok, 1 failed, 0 skipped" in captured.out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["backend"] == "local" and summary["workers"] == 2 and summary["counts"] == {"ok": 4, "failed": 1, "skipped": 0}
    assert_batch_outputs(out, detect_reference, summary)
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [row["status"] for row in table].count("ok") == 4
    assert set(table[0]) >= {"path", "sha256_first_mib", "size_bytes", "model", "model_sha256", "status", "error", "glomeruli",
                             "uncertain", "glomerular_area_um2", "tissue_area_mm2", "glomeruli_per_mm2", "seconds", "device"}
    gamma = next(row for row in table if "gamma" in row["path"])
    assert int(gamma["glomeruli"]) == 3 and float(gamma["glomerular_area_um2"]) > 0
    assert float(gamma["glomeruli_per_mm2"]) == pytest.approx(3 / float(gamma["tissue_area_mm2"]), rel=1e-2)


def test_killed_worker_slide_is_retried(batch_slides, batch_data_dir, detect_reference, tmp_path):
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.local import LocalPool
    from hubseg.batch.runner import run_batch

    out = tmp_path / "out"
    config = batch_config(out, batch_data_dir)
    pool = LocalPool(config, workers=2, devices=["cpu"], torch_threads=1)
    killed = []

    def kill_a_worker(index, row):
        if not killed:  # first finished slide: SIGKILL the other worker, which is busy with the next one
            victims = [pid for pid in pool.pids() if pid != row.get("worker_pid")]
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])

    items = collect_inputs([str(batch_slides)])
    summary = run_batch(items, config, pool, progress=False, on_row=kill_a_worker)
    assert killed
    assert_batch_outputs(out, detect_reference, summary)
    pids = {row.get("worker_pid") for row in summary["slides"] if row.get("worker_pid")}
    assert killed[0] not in pids - {None} or len(pids) > 2  # later slides ran in a rebuilt pool


def test_resume_after_the_batch_was_killed_redoes_only_unfinished_slides(batch_slides, batch_data_dir, detect_reference, tmp_path):
    from hubseg.batch.summary import RECORDS_DIR
    from hubseg.cli import main

    out = tmp_path / "out"
    args = ["batch", str(batch_slides), "-o", str(out), *DETECT_ARGS, "--data-dir", str(batch_data_dir), "--workers", "1", "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "hubseg", *args], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = out / RECORDS_DIR
    deadline = time.monotonic() + 120
    try:
        while not (records.is_dir() and any(p.suffix == ".json" for p in records.iterdir())):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no slide finished in 120 s"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # driver and worker: like a node that lost power
        process.wait(30)
    done_before = {p.stem for p in records.glob("*.json")}
    assert 1 <= len(done_before) < 5, "the batch must be killed mid-way"
    before = {stem: (out / f"{stem}.geojson").stat().st_mtime_ns for stem in done_before if (out / f"{stem}.geojson").exists()}

    assert main([*args, "--resume"]) == 2  # the corrupt slide fails again
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    ok_before = {stem for stem in done_before if stem != CORRUPT}
    assert_batch_outputs(out, detect_reference, summary, skipped=ok_before)
    for stem in ok_before:  # finished slides were not redone
        assert (out / f"{stem}.geojson").stat().st_mtime_ns == before[stem]
    redone = {Path(r["path"]).name.split(".")[0] for r in summary["slides"] if r["status"] != "skipped"}
    assert redone == (set(GOOD_SLIDES) | {CORRUPT}) - ok_before


def test_resume_redoes_slides_of_another_model_or_options(batch_slides, batch_data_dir, tmp_path):
    """--resume trusts an output only for the same weights sha256 and options (the driver's check, run here
    with the in-process backend the server uses, so no worker processes are started)."""
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.runner import InProcess, run_batch
    from hubseg.batch.summary import read_record, write_record
    from hubseg.models.registry import load_model_folder

    out = tmp_path / "out"
    config = batch_config(out, batch_data_dir)
    model = load_model_folder(config.model.folder, device="cpu")
    items = collect_inputs([str(batch_slides / "beta.ome.tif"), str(batch_slides / "delta.ome.tif"),
                            str(batch_slides / "alpha.ome.tif")])
    assert run_batch(items, config, InProcess(config, model), progress=False)["counts"]["ok"] == 3
    write_record(out, "beta", {**read_record(out, "beta"), "model_sha256": "0" * 64})
    write_record(out, "alpha", {**read_record(out, "alpha"), "options": {**config.options, "tta": "none"}})
    summary = run_batch(items, config, InProcess(config, model), resume=True, progress=False)
    rows = {Path(r["path"]).name: r["status"] for r in summary["slides"]}
    assert rows == {"beta.ome.tif": "ok", "delta.ome.tif": "skipped", "alpha.ome.tif": "ok"}


def test_interrupt_stops_workers_and_removes_partial_outputs(batch_slides, batch_data_dir, tmp_path):
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.local import LocalPool
    from hubseg.batch.runner import run_batch

    out = tmp_path / "out"
    config = batch_config(out, batch_data_dir)
    pool = LocalPool(config, workers=1, devices=["cpu"], torch_threads=1)
    pids = []

    def interrupt(index, row):
        pids.extend(pool.pids())
        raise KeyboardInterrupt  # what Ctrl-C raises in the driver

    items = collect_inputs([str(batch_slides)])
    with pytest.raises(KeyboardInterrupt):
        run_batch(items, config, pool, progress=False, on_row=interrupt)
    for pid in pids:  # the worker is gone
        with pytest.raises(ProcessLookupError):
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] is True and len(summary["slides"]) == 1 and len(summary["unfinished"]) == 4
    finished = Path(summary["slides"][0]["path"]).name.split(".")[0]
    geojsons = {p.name for p in out.glob("*.geojson")}
    assert geojsons <= {f"{finished}.geojson"}
    assert_no_temp_files(out)


def test_bad_inputs_are_one_line_errors(batch_data_dir, tmp_path, capsys):
    from hubseg.cli import main

    assert main(["batch", str(tmp_path / "nothing-*.tif"), "-o", str(tmp_path / "o"), "--data-dir", str(batch_data_dir)]) == 2
    assert "no slide files match" in capsys.readouterr().err
    assert main(["batch", "-o", str(tmp_path / "o"), "--data-dir", str(batch_data_dir)]) == 2
    assert "give exactly one of" in capsys.readouterr().err
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,pixel_size_um\nslide.tif,abc\n")
    assert main(["batch", "--manifest", str(manifest), "-o", str(tmp_path / "o"), "--data-dir", str(batch_data_dir)]) == 2
    assert "line 2: pixel_size_um must be a number" in capsys.readouterr().err


def test_manifest_rows_with_pixel_size_and_region(batch_slides, batch_data_dir, tmp_path):
    from dataclasses import replace

    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.runner import InProcess, run_batch
    from hubseg.models.registry import load_model_folder

    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f'path,pixel_size_um,region\n{batch_slides / "gamma.ome.tif"},0.5,"0,0,300,640"\n'
                        f'{batch_slides / "alpha.ome.tif"},,\nmissing.tif,1.0,0 0 10 10\n', encoding="utf-8")
    items = collect_inputs(manifest=str(manifest))
    assert [(Path(i.path).name, i.pixel_size_um, i.region) for i in items] == [
        ("gamma.ome.tif", 0.5, (0, 0, 300, 640)), ("alpha.ome.tif", None, None), ("missing.tif", 1.0, (0, 0, 10, 10))]
    assert items[2].path == str(tmp_path / "missing.tif")  # relative to the manifest's folder
    out = tmp_path / "out"
    config = replace(batch_config(out, batch_data_dir), overlay=True)
    summary = run_batch(items, config, InProcess(config, load_model_folder(config.model.folder, device="cpu")), progress=False)
    gamma = json.loads((out / "gamma.geojson").read_text())
    assert gamma["properties"]["region"] == [0, 0, 300, 640] and len(gamma["features"]) == 1
    assert (out / "gamma.png").is_file() and (out / "alpha.png").is_file()
    missing = summary["slides"][2]
    assert missing["status"] == "failed" and missing["error"].startswith("slide not found")

