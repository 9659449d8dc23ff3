"""Self-training over HTTP: POST /v1/trainings with "unlabelled" slides, progress by phase, cancel."""

from __future__ import annotations

import time

import pytest

import tests.support.training as training_helpers
from tests.support.server import ServerProcess, validate


@pytest.fixture(scope="module")
def adapt_server(tmp_path_factory, tiff_writer):
    helpers = training_helpers
    base = tmp_path_factory.mktemp("selftrain-http")
    teacher = helpers.make_teacher(base / "data")
    slides = base / "slides"
    slides.mkdir()
    helpers.write_unlabelled_slide(slides / "small.ome.tif", tiff_writer)
    helpers.write_unlabelled_slide(slides / "large.ome.tif", tiff_writer, size=1024, disks=12, seed=9)
    (slides / "folder").mkdir()
    with ServerProcess(base / "data", slides_roots=[slides]) as proc:
        proc.teacher = teacher
        proc.slides = slides
        yield proc


def _wait_message(server, job_id, needle, timeout=120.0, phases=None) -> tuple[dict, list[str]]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.get(f"/v1/jobs/{job_id}").json()
        message = job["progress"]["message"]
        if not seen or seen[-1] != message:
            seen.append(message)
            if phases is not None and job["progress"]["phase"] is not None:
                phases.append(job["progress"]["phase"])
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
    phases = []
    job, seen = _wait_message(server, job["id"], "calibrating", timeout=300, phases=phases)
    done = server.wait_job(job["id"], timeout=300)
    assert done["state"] == "succeeded", done.get("error") or done
    assert any("teacher" in m for m in seen) or any("pseudo-labels" in m for m in seen), seen
    # progress.phase: what a progress dialog shows (phase, round, and the slide during the teacher pass)
    assert {p["phase"] for p in phases} <= {"teacher", "pseudo-labels", "training", "calibrating"} and phases, seen
    assert all(p["phases"] == ["teacher", "pseudo-labels", "training", "calibrating"] for p in phases)
    assert all(p["slide"] == "small.ome.tif" for p in phases if p["phase"] == "teacher" and "slide" in p)
    # adaptation: what the dialog shows at the end
    adaptation = done["adaptation"]
    assert adaptation["model"] == done["new_model"] and adaptation["teacher"] == server.teacher
    assert adaptation["pseudo_positive_objects"] >= 1 and adaptation["uncertain_objects"] >= 0
    assert 0.0 <= adaptation["ignored_tissue_fraction"] <= 1.0 and adaptation["gate"]["cutoff"] is not None
    assert adaptation["teacher_tiles"] == 9 and adaptation["held_back_tiles"] == 2  # 3 × 3 teacher tiles
    assert adaptation["safety"]["verdict"] in ("ok", "flagged") and adaptation["activated"] is False
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
    assert done["state"] == "succeeded", done.get("error") or done
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
        if field:
            assert response.json()["error"]["field"] == field, (body, response.text)
    assert server.delete(f"/v1/uploads/{upload_id}").status_code == 204


def test_batch_adapts_first_then_detects(adapt_server):
    server = adapt_server
    images = [{"path": str(server.slides / "small.ome.tif")}, {"path": str(server.slides / "large.ome.tif")}]
    response = server.post("/v1/batches", json={"images": images, "model": server.teacher,
                                                "adapt": {"slides": 1, "tiles_per_slide": 9, "epochs": 1,
                                                          "cohort": "lab-7"}})
    job = validate(response, "POST", "/v1/batches")
    assert response.status_code == 202, response.text
    done = server.wait_job(job["id"], timeout=300)
    assert done["state"] == "succeeded", done.get("error") or done
    adaptation = done["adaptation"]
    assert adaptation["cohort"] == {"name": "lab-7", "slides": 2, "adapted_on": 1}
    assert adaptation["slides"] == 1 and adaptation["teacher_tiles"] == 9
    from hubseg.models.registry import ModelRegistry

    card = ModelRegistry(server.data_dir).card(adaptation["model"])
    assert card.provenance["self_training"]["cohort"]["name"] == "lab-7"
    batch = server.get(f"/v1/batches/{job['id']}").json()
    assert [s["status"] for s in batch["slides"]] == ["ok", "ok"]
    used = adaptation["model"] if adaptation["used_for_detection"] else server.teacher
    assert adaptation["used_for_detection"] == (adaptation["safety"]["verdict"] != "flagged")
    result = server.get(batch["slides"][0]["result_url"]).json()
    assert result["properties"]["model"]["name"] == used


def test_adapt_and_cap_fields_are_checked(adapt_server):
    server = adapt_server
    small = {"path": str(server.slides / "small.ome.tif")}
    cases = [
        ("/v1/batches", {"images": [small], "adapt": "yes"}, 400, "adapt"),
        ("/v1/batches", {"images": [small], "adapt": {"slides": 0}}, 422, "adapt.slides"),
        ("/v1/batches", {"images": [small], "adapt": {"zoom": 1}}, 400, "adapt.zoom"),
        ("/v1/batches", {"images": [small], "adapt": {"cohort": ""}}, 422, "adapt.cohort"),
        ("/v1/trainings", {"unlabelled": [small], "params": {"tiles_per_slide": 0}}, 422, "params.tiles_per_slide"),
        ("/v1/trainings", {"label_sets": "all", "params": {"max_teacher_tiles": 5}}, 422, None),
    ]
    for route, body, status, field in cases:
        response = server.post(route, json=body)
        validate(response, "POST", route)
        assert response.status_code == status, (body, response.text)
        if field:
            assert response.json()["error"]["field"] == field, (body, response.text)
