"""hubseg batch on Ray: a local Ray instance with 2 CPUs started by the tests (one for the module, shut down
after it): outputs equal to hubseg detect, an actor killed mid-slide is restarted and its slide retried,
Ctrl-C cleanup, and --resume through the CLI joining the running instance by address."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from .conftest import CORRUPT, DETECT_ARGS, GOOD_SLIDES, assert_batch_outputs, assert_no_temp_files
from .test_local import batch_config

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hubseg[batch]'); the Ray backend cannot be tested")


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance (2 CPUs) for the module: Ray's start-up is slow. Ray's memory monitor is off:
    the test machine is shared, and another process's memory use must not kill these workers."""
    previous = os.environ.get("RAY_memory_monitor_refresh_ms")
    os.environ["RAY_memory_monitor_refresh_ms"] = "0"  # read by the raylet ray.init starts
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("RAY_memory_monitor_refresh_ms", None)
        else:
            os.environ["RAY_memory_monitor_refresh_ms"] = previous


def test_killed_actor_is_restarted_and_its_slide_retried(ray_address, batch_slides, batch_data_dir, detect_reference, tmp_path):
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.ray_backend import RayBackend
    from hubseg.batch.runner import run_batch

    out = tmp_path / "out"
    config = batch_config(out, batch_data_dir)
    backend = RayBackend(config, workers=2, cpus_per_worker=1, device="cpu", max_retries=2)
    killed, original = [], set()

    def kill_the_other_actor(index, row):
        if not killed:  # the other actor is busy with its slide right now
            original.update(backend.pids())
            victim = next(pid for pid in original if pid != row["worker_pid"])
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    summary = run_batch(collect_inputs([str(batch_slides)]), config, backend, progress=False, on_row=kill_the_other_actor)
    assert killed and summary["backend"] == "ray" and summary["workers"] == 2
    assert_batch_outputs(out, detect_reference, summary)
    assert all("died" not in (row["error"] or "") for row in summary["slides"])
    restarted = {row.get("worker_pid") for row in summary["slides"]} - original - {None}
    assert restarted, "the killed actor's slide was retried in a restarted worker process"
    assert backend.actors == []  # actors are killed when the batch ends


def test_interrupt_then_resume_on_the_running_cluster(ray_address, batch_slides, batch_data_dir, detect_reference, tmp_path, capsys):
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.ray_backend import RayBackend
    from hubseg.batch.runner import run_batch
    from hubseg.batch.summary import RECORDS_DIR
    from hubseg.cli import main

    out = tmp_path / "out"
    config = batch_config(out, batch_data_dir)
    backend = RayBackend(config, workers=2, cpus_per_worker=1, device="cpu")
    seen = []

    def interrupt(index, row):
        seen.append(Path(row["path"]).name.split(".")[0])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(collect_inputs([str(batch_slides)]), config, backend, progress=False, on_row=interrupt)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] and len(summary["slides"]) == 2 and len(summary["unfinished"]) == 3
    # A slide whose worker finished it (its record is written last) before the actors were killed is kept, even
    # if its row had not reached the driver; every other output is removed.
    finished = {p.stem for p in (out / RECORDS_DIR).glob("*.json")}
    assert set(seen) <= finished
    assert {p.name.split(".")[0] for p in out.glob("*.geojson")} <= finished
    assert_no_temp_files(out)
    before = {stem: (out / f"{stem}.geojson").stat().st_mtime_ns for stem in finished if stem != CORRUPT}

    code = main(["batch", str(batch_slides), "-o", str(out), *DETECT_ARGS, "--data-dir", str(batch_data_dir),
                 "--ray", ray_address, "--workers", "2", "--resume", "--quiet"])
    assert code == 2 and "(ray, 2 worker(s))" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert_batch_outputs(out, detect_reference, summary, skipped=set(before))
    for stem, mtime in before.items():
        assert (out / f"{stem}.geojson").stat().st_mtime_ns == mtime
    redone = {Path(r["path"]).name.split(".")[0] for r in summary["slides"] if r["status"] != "skipped"}
    assert redone == (set(GOOD_SLIDES) | {CORRUPT}) - set(before)
    assert ray.is_initialized()  # the CLI joined the instance it did not start, and left it running
