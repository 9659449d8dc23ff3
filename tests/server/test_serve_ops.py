"""token policy, housekeeping, port in use, logging, graceful stop (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import stat
import time

from tests.support.server import ServerProcess, slide_image, write_slide
from .test_security import run_serve


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    return lines[0]


# --- token file policy -------------------------------------------------------------------------
def test_weak_or_readable_tokens_are_refused_and_make_token_is_strong(tmp_path, template_data_dir, slides_root):
    short = tmp_path / "short"
    short.write_text("x\n")
    short.chmod(0o600)
    assert "at least 16" in one_line_error(run_serve(["--token-file", str(short), "--port", "0"]))
    env = {k: v for k, v in os.environ.items() if k != "HUBSEG_TOKEN"}
    assert "at least 16" in one_line_error(run_serve(["--port", "0"], env={**env, "HUBSEG_TOKEN": "abc"}))
    readable = tmp_path / "readable"
    readable.write_text("a-long-enough-token-of-many-chars\n")
    readable.chmod(0o644)
    assert f"chmod 600 {readable}" in one_line_error(run_serve(["--token-file", str(readable), "--port", "0"]))

    made = tmp_path / "made-token"
    result = run_serve(["--make-token", str(made)])
    assert result.returncode == 0 and str(made) in result.stdout, result.stderr
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    token = made.read_text().strip()
    assert len(token) >= 40
    assert "already exists" in one_line_error(run_serve(["--make-token", str(made)]))
    assert made.read_text().strip() == token  # never overwritten
    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    with ServerProcess(data, slides_roots=[slides_root], token=token, token_file=made) as proc:
        assert proc.get("/v1/models").status_code == 200


# --- housekeeping at start-up, retention, logs ----------------------------------------------
def test_startup_sweeps_leftovers_applies_retention_and_logs(tmp_path, template_data_dir, slides_root):
    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    token = "a-token-that-must-never-be-logged"
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    with ServerProcess(data, slides_roots=[slides_root], token=token, token_file=token_file) as proc:
        job = proc.post("/v1/detections", json={"image": {"path": str(slides_root / "slide.tif")}}).json()
        assert proc.wait_job(job["id"])["state"] == "succeeded"
        assert proc.get("/v1/models").status_code == 200
        assert proc.get("/v1/nope").status_code == 404
    log_text = (data / "logs" / "server.log").read_text()
    assert "GET /v1/models 200" in log_text and "GET /v1/nope 404" in log_text
    assert f"POST /v1/detections 202" in log_text
    assert f"job {job['id']}: detection started" in log_text and f"job {job['id']}: succeeded" in log_text
    assert "100%" in log_text
    assert token not in log_text and token not in "".join(proc.log)
    assert "POST /v1/detections 202" in "".join(proc.log)  # stderr too

    # leftovers of a kill: an orphan label file, a temp file of an interrupted write (old enough to be stale)
    old = time.time() - 3600
    orphan, temp = data / "labels" / ("ab" * 16 + ".json"), data / "results" / ".x.geojson.123.tmp"
    for path in (orphan, temp):
        path.write_text("{}")
        os.utime(path, (old, old))
    fresh = data / "labels" / ("cd" * 16 + ".json")  # may belong to a write in progress: kept
    fresh.write_text("{}")
    # the finished job is 40 days old: over the retention of 30 days
    with sqlite3.connect(data / "server.sqlite3") as db:
        db.execute("UPDATE jobs SET finished = '2000-01-01T00:00:00.000Z' WHERE id = ?", (job["id"],))
    result_file = data / "results" / f"{job['id']}.geojson"
    assert result_file.exists()
    with ServerProcess(data, slides_roots=[slides_root], token=token, token_file=token_file,
                       extra_args=["--keep-results-days", "30", "--log-level", "debug"]) as proc:
        again = proc.get(f"/v1/jobs/{job['id']}").json()
        assert again["result_available"] is False and not result_file.exists()
        assert proc.get(f"/v1/jobs/{job['id']}/result").status_code == 404
        assert proc.get("/v1/health").status_code == 200
        time.sleep(0.5)
        assert "GET /v1/health 200" in "".join(proc.log)  # polling is logged at debug level only
    assert not orphan.exists() and not temp.exists() and fresh.exists()


# --- port in use -----------------------------------------------------------------------------------
def test_port_in_use_is_one_line(tmp_path, server):
    port = int(server.url.rsplit(":", 1)[1])
    line = one_line_error(run_serve(["--port", str(port), "--data-dir", str(tmp_path / "d")]))
    assert f"port {port}" in line and "hubseg server (version" in line and "--port" in line
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        taken = other.getsockname()[1]
        line = one_line_error(run_serve(["--port", str(taken), "--data-dir", str(tmp_path / "d")]))
        assert f"port {taken}" in line and "another program" in line


# --- a stop after the last tile keeps the result ------------------------------------------------------
def test_sigterm_after_all_tiles_keeps_the_result(tmp_path, template_data_dir):
    root = tmp_path / "slides"
    root.mkdir()
    disks = [(60 + 100 * i, 60 + 100 * j, 40) for i in range(19) for j in range(19)]  # 361 objects to trace
    write_slide(root / "many.tif", slide_image(2000, 2000, disks), 0.5, levels=3)
    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    body = {"image": {"path": str(root / "many.tif")}, "options": {"tta": "none"}}
    for _attempt in range(3):  # the window between the last tile and the result is short: retry if missed
        proc = ServerProcess(data, slides_roots=[root]).start()
        caught = False
        try:
            job = proc.post("/v1/detections", json=body).json()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                state = proc.get(f"/v1/jobs/{job['id']}").json()
                if state["state"] in ("succeeded", "failed", "cancelled"):
                    break
                if state["state"] == "running" and state["progress"]["done"] >= state["progress"]["total"] > 0:
                    caught = True
                    break
                time.sleep(0.01)
        finally:
            proc.stop()  # SIGTERM
        if caught:
            break
    else:
        raise AssertionError("never caught the job between its last tile and its result")
    again = ServerProcess(data, slides_roots=[root]).start()
    try:
        done = again.get(f"/v1/jobs/{job['id']}").json()
        assert done["state"] == "succeeded" and done["result_available"], done
        assert len(again.get(f"/v1/jobs/{job['id']}/result").json()["features"]) > 100
    finally:
        again.stop()
    assert json.loads((data / "results" / f"{job['id']}.geojson").read_text())["type"] == "FeatureCollection"
