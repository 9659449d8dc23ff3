"""The real server over HTTP: detect → poll → result, upload form, geometry, cancel, results, labels, training."""

from __future__ import annotations

import io

import numpy as np
from shapely.geometry import shape

from .conftest import DISKS, PIXEL_SIZE_UM, SLIDE_SIZE
from tests.support.server import slide_image, validate


def detect(server, body=None, **kwargs):
    response = server.post("/v1/detections", json=body, **kwargs) if body is not None else \
        server.post("/v1/detections", **kwargs)
    job = validate(response, "POST", "/v1/detections")
    assert response.status_code == 202, job
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    return job


def finished(server, job_id):
    job = server.wait_job(job_id)
    validate(server.get(f"/v1/jobs/{job_id}"), "GET", "/v1/jobs/{id}")
    return job


def result_of(server, job_id):
    response = server.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 200, response.text
    return validate(response, "GET", "/v1/jobs/{id}/result")


def centroids(collection):
    return sorted((round(shape(f["geometry"]).centroid.x), round(shape(f["geometry"]).centroid.y))
                  for f in collection["features"])


def assert_near(found, expected, tolerance=4.0):
    assert len(found) == len(expected), (found, expected)
    for (fx, fy), (ex, ey) in zip(sorted(found), sorted(expected)):
        assert abs(fx - ex) <= tolerance and abs(fy - ey) <= tolerance, (found, expected)


def test_health_and_openapi(server):
    health = validate(server.get("/v1/health"), "GET", "/v1/health")
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["active_model"] == "threshold-test-v1" and health["auth_required"] is False
    document = server.get("/v1/openapi.json").json()
    assert document["openapi"].startswith("3.") and "/v1/detections" in document["paths"]


def test_detect_whole_slide_poll_result(server, slides_root):
    job = detect(server, {"image": {"path": str(slides_root / "slide.tif")}})
    assert job["state"] in ("queued", "running") and job["model"] == "threshold-test-v1"
    done = finished(server, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"]["total"] > 0 and done["progress"]["done"] == done["progress"]["total"]
    assert done["result_available"] and done["result_url"] == f"/v1/jobs/{job['id']}/result"
    assert done["started"] and done["finished"] and done["error"] is None
    collection = result_of(server, job["id"])
    assert collection["properties"]["model"]["name"] == "threshold-test-v1"
    assert_near(centroids(collection), [(x, y) for x, y, _ in DISKS])
    ranks = [f["properties"]["measurements"]["hubseg rank"] for f in collection["features"]]
    assert ranks == sorted(ranks) == list(range(1, len(DISKS) + 1))
    for feature in collection["features"]:
        measurements = feature["properties"]["measurements"]
        assert "hubseg energy" in measurements and measurements["Area µm^2"] > 0
    listed = validate(server.get("/v1/jobs?state=succeeded&kind=detection"), "GET", "/v1/jobs")
    assert job["id"] in [j["id"] for j in listed["jobs"]]


def test_detect_region_and_geometry(server, slides_root):
    path = str(slides_root / "slide.tif")
    by_region = detect(server, {"image": {"path": path}, "region": {"x": 0, "y": 0, "width": 220, "height": 220},
                                "options": {"tta": "flips", "object_type": "detection"}})
    x, y, r = DISKS[2]
    polygon = {"type": "Polygon", "coordinates": [[[x - 60, y - 60], [x + 60, y - 60], [x + 60, y + 60],
                                                   [x - 60, y + 60], [x - 60, y - 60]]]}
    by_geometry = detect(server, {"image": {"path": path}, "geometry": polygon, "model": "threshold-test-v1"})
    first = result_of(server, finished(server, by_region["id"])["id"])
    assert_near(centroids(first), [DISKS[0][:2]])
    assert first["features"][0]["properties"]["objectType"] == "detection"
    second = result_of(server, finished(server, by_geometry["id"])["id"])
    assert_near(centroids(second), [DISKS[2][:2]])


def detect_upload(server, x0, y0, downsample, image_format="TIFF", **fields):
    """Upload the synthetic slide's region from (x0, y0) at ``downsample`` as the QuPath extension does."""
    from PIL import Image

    full = slide_image(*SLIDE_SIZE, DISKS)
    crop = np.ascontiguousarray(full[y0:, x0:][::downsample, ::downsample])
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format=image_format)
    name, mime = ("region.tif", "image/tiff") if image_format == "TIFF" else ("region.png", "image/png")
    return detect(server, files={"image": (name, buffer.getvalue(), mime)},
                  data={"origin": f"[{x0}, {y0}]", "downsample": str(downsample),
                        "pixel_size_um": str(PIXEL_SIZE_UM), **fields})


def test_upload_form_returns_level0_coordinates(server):
    x0, y0, downsample = 256, 128, 2
    job = detect_upload(server, x0, y0, downsample)
    assert job["upload_id"]
    done = finished(server, job["id"])
    assert done["state"] == "succeeded", done
    collection = result_of(server, job["id"])
    assert_near(centroids(collection), [d[:2] for d in DISKS[1:]], tolerance=2 * downsample + 2)


def test_result_deletion_is_idempotent(server, slides_root):
    job = detect(server, {"image": {"path": str(slides_root / "slide.tif")}})
    finished(server, job["id"])
    for _ in range(2):
        response = server.delete(f"/v1/jobs/{job['id']}/result")
        validate(response, "DELETE", "/v1/jobs/{id}/result")
        assert response.status_code == 204
    gone = server.get(f"/v1/jobs/{job['id']}/result")
    validate(gone, "GET", "/v1/jobs/{id}/result")
    assert gone.status_code == 404
    assert server.get(f"/v1/jobs/{job['id']}").json()["result_available"] is False


def test_cancel_running_and_queued_jobs(server, slides_root):
    body = {"image": {"path": str(slides_root / "slow.tif")}, "model": "tiny-test-v1"}
    running = detect(server, body)
    queued = detect(server, body)
    # the queued one is cancelled at once
    response = server.delete(f"/v1/jobs/{queued['id']}")
    cancelled = validate(response, "DELETE", "/v1/jobs/{id}")
    assert response.status_code == 200 and cancelled["state"] == "cancelled" and cancelled["cancel_requested"]
    # wait until the first is really inside its batches, then cancel it
    server.wait_job(running["id"], states=("running",))
    server.wait_progress(running["id"])
    health = validate(server.get("/v1/health"), "GET", "/v1/health")  # answers while the worker is busy
    assert health["queue_length"] >= 1
    response = server.delete(f"/v1/jobs/{running['id']}")
    assert response.status_code == 200 and validate(response, "DELETE", "/v1/jobs/{id}")["cancel_requested"]
    stopped = server.wait_job(running["id"], timeout=60)
    assert stopped["state"] == "cancelled", stopped
    assert stopped["progress"]["done"] < stopped["progress"]["total"]
    # idempotent; results of cancelled jobs are a 409
    again = validate(server.delete(f"/v1/jobs/{running['id']}"), "DELETE", "/v1/jobs/{id}")
    assert again["state"] == "cancelled"
    conflict = server.get(f"/v1/jobs/{running['id']}/result")
    validate(conflict, "GET", "/v1/jobs/{id}/result")
    assert conflict.status_code == 409
    # the worker is free again
    after = detect(server, {"image": {"path": str(slides_root / "slide.tif")}})
    assert finished(server, after["id"])["state"] == "succeeded"


def test_failed_job_reports_error(server, slides_root, tmp_path):
    """A job whose input disappears after submission fails with a message, and the worker carries on."""
    import shutil

    path = slides_root / "vanishing.tif"
    shutil.copy(slides_root / "slow.tif", path)
    blocker = detect(server, {"image": {"path": str(slides_root / "slow.tif")}, "model": "tiny-test-v1"})
    job = detect(server, {"image": {"path": str(path)}})
    path.unlink()
    server.delete(f"/v1/jobs/{blocker['id']}")
    failed = server.wait_job(job["id"])
    assert failed["state"] == "failed" and failed["error"]["code"] == "not_found", failed
    assert "vanishing.tif" in failed["error"]["message"]


def square(x, y, size):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}


def test_labels_then_training_registers_a_new_model(server, slides_root):
    features = [
        {"type": "Feature", "geometry": square(x - r, y - r, 2 * r),
         "properties": {"objectType": "annotation", "classification": {"name": "Glomerulus", "color": [0, 200, 0]}}}
        for x, y, r in DISKS
    ]
    document = {"format": "hubseg-labelset/1", "image": {"path": str(slides_root / "slide.tif")},
                "pixel_size_um": PIXEL_SIZE_UM, "regions": [square(0, 0, 440)],
                "features": {"type": "FeatureCollection", "features": features}, "source": "api"}
    response = server.post("/v1/labels", json=document)
    summary = validate(response, "POST", "/v1/labels")
    assert response.status_code == 201 and summary["features_count"] == len(DISKS)
    stored = validate(server.get(f"/v1/labels/{summary['id']}"), "GET", "/v1/labels/{id}")
    assert stored["features"] == document["features"] and stored["regions"] == document["regions"]

    response = server.post("/v1/trainings", json={"base_model": "tiny-test-v1", "label_sets": [summary["id"]],
                                                  "params": {"epochs": 1, "batch_size": 2}, "activate": False})
    job = validate(response, "POST", "/v1/trainings")
    assert response.status_code == 202 and response.headers["Location"] == f"/v1/jobs/{job['id']}"
    done = server.wait_job(job["id"], timeout=300)
    assert done["state"] == "succeeded", done
    new_model = done["new_model"]
    assert new_model and new_model.startswith("tiny-test-v")
    model = validate(server.get(f"/v1/models/{new_model}"), "GET", "/v1/models/{name}")
    assert model["active"] is False
    # the job's last progress message says how the new version's gate was calibrated (here: nothing to calibrate
    # on — one region, and the tiny base has no gate), as the card does
    calibration = model["card"]["metrics"]["calibration"] if "card" in model else model["metrics"]["calibration"]
    assert done["progress"]["message"] == calibration["message"]
    assert calibration["method"] == "none" and done["progress"]["message"].startswith("calibration: NONE")
    assert server.get("/v1/health").json()["active_model"] == "threshold-test-v1"
    no_result = server.get(f"/v1/jobs/{job['id']}/result")
    validate(no_result, "GET", "/v1/jobs/{id}/result")
    assert no_result.status_code == 409
    # the new version detects (random tiny weights: only that it runs end to end)
    again = detect(server, {"image": {"path": str(slides_root / "slide.tif")}, "model": new_model})
    assert finished(server, again["id"])["state"] == "succeeded"


def test_training_on_an_uploaded_region_and_activation(server):
    """Label sets may reference an upload; training maps them onto the uploaded pixels."""
    x0, y0 = 64, 32
    job = detect_upload(server, x0, y0, 2, image_format="PNG", model="tiny-test-v1")
    assert finished(server, job["id"])["state"] == "succeeded"
    features = [
        {"type": "Feature", "geometry": square(x - r, y - r, 2 * r),
         "properties": {"classification": {"name": "Glomerulus"}}} for x, y, r in DISKS
    ]
    document = {"format": "hubseg-labelset/1", "image": {"upload_id": job["upload_id"]},
                "pixel_size_um": PIXEL_SIZE_UM, "regions": [square(x0, y0, 400)],
                "features": {"type": "FeatureCollection", "features": features}, "source": "qupath"}
    response = server.post("/v1/labels", json=document)
    assert response.status_code == 201, response.text
    label_id = response.json()["id"]
    assert server.get(f"/v1/labels/{label_id}").json()["image"] == {"upload_id": job["upload_id"]}
    response = server.post("/v1/trainings", json={"base_model": "tiny-test-v1", "label_sets": [label_id],
                                                  "params": {"epochs": 1, "batch_size": 2, "seed": 1},
                                                  "activate": True})
    assert response.status_code == 202, response.text
    done = server.wait_job(response.json()["id"], timeout=300)
    assert done["state"] == "succeeded", done
    health = server.get("/v1/health").json()
    assert health["active_model"] == done["new_model"]
    listing = validate(server.get("/v1/models"), "GET", "/v1/models")
    assert [m["name"] for m in listing["models"] if m["active"]] == [done["new_model"]]
    # put the deterministic model back for the other tests of this module
    assert server.post("/v1/models/threshold-test-v1/activate").status_code == 200
