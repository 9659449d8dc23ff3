"""Self-training over HTTP: POST /v1/trainings with "unlabelled" slides, progress by phase, cancel."""

from __future__ import annotations

import time

import pytest

import tests.support.training as training_helpers
from tests.support.server import ServerProcess, validate


@pytest.fixture(scope="module")
def adapt_server(tmp_path_factory, tiff_writer):
    import torch

    helpers = training_helpers
    base = tmp_path_factory.mktemp("selftrain-http")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher = helpers.make_teacher(base / "data")
    finally:
        torch.set_num_threads(previous)
    slides = base / "slides"
    slides.mkdir()
    helpers.write_unlabelled_slide(slides / "small.ome.tif", tiff_writer)
    helpers.write_unlabelled_slide(slides / "large.ome.tif", tiff_writer, size=1024, disks=12, seed=9)
    (slides / "folder").mkdir()
    with ServerProcess(base / "data", slides_roots=[slides]) as proc:
        proc.teacher = teacher
        proc.slides = slides
        yield proc


def _wait_message(server, job_id, needle, timeout=120.0) -> tuple[dict, list[str]]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.get(f"/v1/jobs/{job_id}").json()
        message = job["progress"]["message"]
        if not seen or seen[-1] != message:
            seen.append(message)
        if needle in message or job["state"] not in ("queued", "running"):
            return job, seen
        time.sleep(0.03)
    raise AssertionError(f"no progress message with {needle!r} in {timeout}s: {seen[-5:]}")


def test_self_training_job_registers_a_new_version(adapt_server):
    server = adapt_server
    small = server.slides / "small.ome.tif"
    response = server.post("/v1/trainings", json={"base_model": server.teacher, "unlabelled": [{"path": str(small)}],
                                                  "params": {"epochs": 1, "batch_size": 2}})
    job = validate(response, "POST", "/v1/trainings")
    assert response.status_code == 202, response.text
    job, seen = _wait_message(server, job["id"], "pseudo-labels")
    done = server.wait_job(job["id"], timeout=300)
    assert done["state"] == "succeeded", done
    assert any("teacher" in m for m in seen) or any("pseudo-labels" in m for m in seen), seen
    from hubseg.models.registry import ModelRegistry

    card = ModelRegistry(server.data_dir).card(done["new_model"])
    record = card.provenance["self_training"]
    assert record["teacher"] == server.teacher and record["images"][0]["path"] == str(small.resolve())
    assert record["pseudo_positive_objects"] >= 1 and card.energy_gate["source"] == "self-training"
    assert server.get("/v1/health").json()["active_model"] != done["new_model"]


def test_cancel_during_the_teacher_pass(adapt_server):
    server = adapt_server
    response = server.post("/v1/trainings", json={"base_model": server.teacher,
                                                  "unlabelled": [{"path": str(server.slides / "large.ome.tif")}]})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job, _ = _wait_message(server, job_id, "teacher")
    assert job["state"] == "running"
    before = set(p.name for p in (server.data_dir / "models").iterdir())
    assert server.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert server.wait_job(job_id, timeout=60)["state"] == "cancelled"
    assert set(p.name for p in (server.data_dir / "models").iterdir()) == before


def test_cancel_during_training(adapt_server):
    server = adapt_server
    response = server.post("/v1/trainings", json={"base_model": server.teacher,
                                                  "unlabelled": [{"path": str(server.slides / "small.ome.tif")}],
                                                  "params": {"epochs": 1000, "batch_size": 2}})
    job_id = response.json()["id"]
    job, seen = _wait_message(server, job_id, "training: epoch", timeout=240)
    assert job["state"] == "running" and "round 1/1 training: epoch" in job["progress"]["message"], seen
    before = set(p.name for p in (server.data_dir / "models").iterdir())
    assert server.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert server.wait_job(job_id, timeout=60)["state"] == "cancelled"
    assert set(p.name for p in (server.data_dir / "models").iterdir()) == before


def test_unlabelled_paths_are_checked_like_detection_paths(adapt_server, tmp_path):
    server = adapt_server
    outside = tmp_path / "outside.tif"
    outside.write_bytes(b"x")
    cases = [
        ({"unlabelled": [{"path": str(outside)}]}, 403, "unlabelled[0].path"),
        ({"unlabelled": [{"path": str(server.slides / "nope.tif")}]}, 404, None),
        ({"unlabelled": [{"path": str(server.slides / "folder")}]}, 415, "unlabelled[0].path"),
        ({"unlabelled": [{"path": "relative.tif"}]}, 422, "unlabelled[0].path"),
        ({"unlabelled": "small.ome.tif"}, 422, "unlabelled"),
        ({"unlabelled": []}, 422, "unlabelled"),
        ({"unlabelled": [{"path": str(server.slides / "small.ome.tif"), "zoom": 2}]}, 400, "unlabelled[0].zoom"),
        ({"unlabelled": [{"path": str(server.slides / "small.ome.tif"), "pixel_size_um": 0}]}, 422,
         "unlabelled[0].pixel_size_um"),
        ({"unlabelled": [{"path": str(server.slides / "small.ome.tif")}], "params": {"rounds": 9}}, 422, "params.rounds"),
        ({"label_sets": "all", "params": {"rounds": 2}}, 422, None),
        ({"base_model": server.teacher}, 400, "label_sets"),
    ]
    for body, status, field in cases:
        response = server.post("/v1/trainings", json=body)
        validate(response, "POST", "/v1/trainings")
        assert response.status_code == status, (body, response.text)
        if field:
            assert response.json()["error"]["field"] == field, (body, response.text)


def _upload_unlabelled_tile(server) -> dict:
    """The pixels of small.ome.tif (4 µm/px) as a client that cannot share the file would send them."""
    import io

    import numpy as np
    from PIL import Image

    rgb, _ = training_helpers.synthetic_tile(np.random.default_rng(7), 192, disks=4)  # as write_unlabelled_slide
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    response = server.post("/v1/uploads", files={"image": ("tile.png", buffer.getvalue(), "image/png")},
                           data={"pixel_size_um": "4.0"})
    validate(response, "POST", "/v1/uploads")
    assert response.status_code == 201, response.text
    return response.json()


def test_self_training_on_an_upload(adapt_server):
    """``"unlabelled": [{"upload_id"}]``: the job reads the stored pixels at their own pixel size, and the upload
    cannot be deleted while the job is unfinished."""
    server = adapt_server
    upload_id = _upload_unlabelled_tile(server)["upload_id"]
    response = server.post("/v1/trainings", json={"base_model": server.teacher, "unlabelled": [{"upload_id": upload_id}],
                                                  "params": {"epochs": 1, "batch_size": 2}})
    job = validate(response, "POST", "/v1/trainings")
    assert response.status_code == 202, response.text
    busy = server.delete(f"/v1/uploads/{upload_id}")  # the job is queued or running for seconds
    validate(busy, "DELETE", "/v1/uploads/{id}")
    assert busy.status_code == 409 and job["id"] in busy.json()["error"]["message"], busy.text
    done = server.wait_job(job["id"], timeout=300)
    assert done["state"] == "succeeded", done
    from hubseg.models.registry import ModelRegistry

    card = ModelRegistry(server.data_dir).card(done["new_model"])
    record = card.provenance["self_training"]
    stored = server.data_dir / "uploads" / f"{upload_id}.png"
    assert [image["path"] for image in record["images"]] == [str(stored)]
    assert record["pseudo_positive_objects"] >= 1, record
    assert server.delete(f"/v1/uploads/{upload_id}").status_code == 204  # finished: the upload may go


def test_unlabelled_upload_ids_are_checked(adapt_server):
    server = adapt_server
    upload_id = _upload_unlabelled_tile(server)["upload_id"]
    small = str(server.slides / "small.ome.tif")
    cases = [
        ({"unlabelled": [{"upload_id": "f" * 32}]}, 404, "unlabelled[0].upload_id"),
        ({"unlabelled": [{"path": small}, {"upload_id": "../x"}]}, 400, "unlabelled[1].upload_id"),
        ({"unlabelled": [{"upload_id": upload_id, "path": small}]}, 422, "unlabelled[0]"),
        ({"unlabelled": [{"upload_id": upload_id, "pixel_size_um": 2}]}, 400, "unlabelled[0].pixel_size_um"),
    ]
    for body, status, field in cases:
        response = server.post("/v1/trainings", json={"base_model": server.teacher, **body})
        validate(response, "POST", "/v1/trainings")
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["field"] == field, (body, response.text)
    assert server.delete(f"/v1/uploads/{upload_id}").status_code == 204
