"""POST /v1/batches over HTTP on 127.0.0.1: one job, per-slide progress and results equal to hubseg detect,
the corrupt slide failed with its reason, paths outside the slides roots refused."""

from __future__ import annotations

import shutil
import time

import pytest

import tests.support.server as helpers
from tests.support.server import validate

from .conftest import CORRUPT, GOOD_SLIDES, comparable


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory, batch_data_dir, batch_slides):
    data = tmp_path_factory.mktemp("batch-server") / "data"
    shutil.copytree(batch_data_dir, data)
    with helpers.ServerProcess(data, slides_roots=[batch_slides]) as server:
        yield server


def test_batch_over_http(batch_server, batch_slides, detect_reference):
    names = ["alpha", CORRUPT, "gamma", "delta"]
    body = {"images": [{"path": str(batch_slides / f"{name}.ome.tif")} for name in names],
            "model": "threshold-test-v1", "options": {"tta": "flips"}}
    response = batch_server.post("/v1/batches", json=body)
    created = validate(response, "POST", "/v1/batches")
    assert response.status_code == 202 and created["kind"] == "batch"
    assert response.headers["Location"] == f"/v1/batches/{created['id']}"
    assert [s["status"] for s in created["slides"]] == ["queued"] * 4

    job = batch_server.wait_job(created["id"])
    assert job["state"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] == 4
    response = batch_server.get(f"/v1/batches/{created['id']}")
    batch = validate(response, "GET", "/v1/batches/{id}")
    slides = {s["path"].rsplit("/", 1)[1].split(".")[0]: s for s in batch["slides"]}
    assert batch["counts"]["ok"] == 3 and batch["counts"]["failed"] == 1
    assert slides[CORRUPT]["status"] == "failed" and slides[CORRUPT]["error"] and slides[CORRUPT]["result_url"] is None
    for name in ("alpha", "gamma", "delta"):
        slide = slides[name]
        assert slide["status"] == "ok" and slide["glomeruli"] == len(GOOD_SLIDES[name][2]) and slide["tissue_area_mm2"] > 0
        result = batch_server.get(slide["result_url"])
        geojson = validate(result, "GET", "/v1/batches/{id}/slides/{index}/result")
        assert comparable(geojson) == comparable(detect_reference[name])
    missing = batch_server.get(f"/v1/batches/{created['id']}/slides/1/result")
    assert validate(missing, "GET", "/v1/batches/{id}/slides/{index}/result")["error"]["code"] == "conflict"
    listed = batch_server.get("/v1/jobs", params={"kind": "batch"}).json()["jobs"]
    assert [j["id"] for j in listed] == [created["id"]]


def test_batch_requests_are_validated(batch_server, batch_slides, tmp_path):
    outside = tmp_path / "outside.tif"
    outside.write_bytes(b"II*\x00")
    cases = [
        ({"images": [{"path": str(outside)}]}, 403, "images[0].path"),
        ({"images": []}, 400, "images"),
        ({"images": [{"path": str(batch_slides / "alpha.ome.tif")}], "project": {"path": str(batch_slides)}}, 400, "images"),
        ({"images": [{"path": str(batch_slides / "alpha.ome.tif"), "colour": 1}]}, 400, "images[0].colour"),
        ({"images": [{"path": str(batch_slides / "alpha.ome.tif")}] * 2}, 422, "images[1].path"),
        ({"images": [{"path": str(batch_slides / "alpha.ome.tif")}], "model": "nope"}, 404, "model"),
        ({"project": {"path": str(batch_slides)}}, 422, "project.path"),
    ]
    for body, status, field in cases:
        response = batch_server.post("/v1/batches", json=body)
        error = validate(response, "POST", "/v1/batches")["error"]
        assert (response.status_code, error.get("field")) == (status, field), (body, error)
    assert batch_server.get("/v1/batches/" + "0" * 32).status_code == 404


def test_cancel_a_running_batch(batch_server, batch_slides):
    body = {"images": [{"path": str(batch_slides / f"{name}.ome.tif")} for name in GOOD_SLIDES] * 1,
            "model": "threshold-test-v1", "options": {"tta": "all"}}
    created = batch_server.post("/v1/batches", json=body).json()
    deadline = time.monotonic() + 60
    while batch_server.get(f"/v1/jobs/{created['id']}").json()["state"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    batch_server.delete(f"/v1/jobs/{created['id']}")
    job = batch_server.wait_job(created["id"])
    batch = batch_server.get(f"/v1/batches/{created['id']}").json()
    if job["state"] == "cancelled":  # on a fast machine the batch may finish before the cancel arrives
        assert batch["counts"]["not_run"] >= 1 and batch["counts"]["running"] == 0
    else:
        assert job["state"] == "succeeded" and batch["counts"]["ok"] == 4
