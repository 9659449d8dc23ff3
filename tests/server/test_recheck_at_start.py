"""Every job kind is checked again when it starts: paths under the current roots (after symlinks), the tile
budget of the current server (real HTTP, 127.0.0.1, bounded waits)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.server import ServerProcess
from .test_limits_everywhere import GATED, register_gated

SLOW = "slow.tif"  # ~1800 tiny-model tiles: keeps the single worker busy while jobs queue behind it


def block_worker(server, slides_root) -> str:
    """Start a slow detection and wait until it runs, so the jobs posted next stay queued."""
    job = server.post("/v1/detections", json={"image": {"path": str(slides_root / SLOW)}, "model": "tiny-test-v1"})
    assert job.status_code == 202, job.text
    server.wait_job(job.json()["id"], states=("running",), timeout=60)
    return job.json()["id"]


def queue_three(server, path) -> dict:
    """A detection, a batch and a self-training job on ``path``, all accepted (202)."""
    bodies = {
        "detection": ("/v1/detections", {"image": {"path": str(path)}}),
        "batch": ("/v1/batches", {"images": [{"path": str(path)}]}),
        "training": ("/v1/trainings", {"base_model": GATED, "unlabelled": [{"path": str(path)}]}),
    }
    ids = {}
    for kind, (route, body) in bodies.items():
        response = server.post(route, json=body)
        assert response.status_code == 202, (kind, response.text)
        ids[kind] = response.json()["id"]
    return ids


@pytest.fixture
def gated_data(data_dir):
    register_gated(data_dir)
    return data_dir


def test_queued_jobs_are_rechecked_after_a_restart(gated_data, slides_root, tmp_path):
    extra = tmp_path / "extra-root"
    extra.mkdir()
    shutil.copy(slides_root / "slide.tif", extra / "slide.tif")
    first = ServerProcess(gated_data, slides_roots=[slides_root, extra]).start()
    try:
        block_worker(first, slides_root)
        gone_root = queue_three(first, extra / "slide.tif")
        over_budget = queue_three(first, slides_root / "slide.tif")
    finally:
        first.kill()
    # the extra root is gone and the tile budget is lower: nothing queued may run as it was accepted
    second = ServerProcess(gated_data, slides_roots=[slides_root], extra_args=["--max-tiles", "10"]).start()
    try:
        for kind, job_id in gone_root.items():
            job = second.wait_job(job_id, timeout=60)
            assert job["state"] == "failed" and job["error"]["code"] == "forbidden_path", (kind, job)
        for kind, job_id in over_budget.items():
            job = second.wait_job(job_id, timeout=60)
            if kind == "batch":  # a slide over budget is a failed row of a finished batch, as before
                slide = second.get(f"/v1/batches/{job_id}").json()["slides"][0]
                assert slide["status"] == "failed" and "tiles" in slide["error"], slide
                continue
            assert job["state"] == "failed" and job["error"]["code"] == "invalid_input", (kind, job)
            assert "limit of 10" in job["error"]["message"], job
            # the request had no region: the message names what it had
            expected = "image.path needs" if kind == "detection" else "unlabelled[0].path needs"
            assert expected in job["error"]["message"] and "region needs" not in job["error"]["message"], job
    finally:
        second.stop()


def test_a_slide_swapped_for_a_symlink_outside_is_refused_when_the_job_starts(gated_data, slides_root, tmp_path):
    root = tmp_path / "swap-root"
    root.mkdir()
    victim = root / "victim.tif"
    shutil.copy(slides_root / "slide.tif", victim)
    with ServerProcess(gated_data, slides_roots=[slides_root, root]) as server:
        blocker = block_worker(server, slides_root)
        queued = queue_three(server, victim)
        victim.unlink()
        os.symlink(os.path.realpath(slides_root / "escape.tif"), victim)  # now points outside every root
        server.delete(f"/v1/jobs/{blocker}")
        for kind, job_id in queued.items():
            job = server.wait_job(job_id, timeout=120)
            assert job["state"] == "failed" and job["error"]["code"] == "forbidden_path", (kind, job)
            assert "outside the allowed slides roots" in job["error"]["message"], job
