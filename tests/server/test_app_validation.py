"""Fast validation tests through the Flask test client (no worker thread): every bad-input class → 4xx JSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from .conftest import PIXEL_SIZE_UM, SLIDE_SIZE
from tests.support.server import validate


def post_detection(client, body, **kwargs):
    response = client.post("/v1/detections", json=body, **kwargs) if not isinstance(body, (bytes, str)) else \
        client.post("/v1/detections", data=body, content_type=kwargs.pop("content_type", "application/json"))
    validate(response, "POST", "/v1/detections")
    return response


def error_of(response):
    return response.get_json()["error"]


@pytest.fixture
def slide(slides_root):
    return str(slides_root / "slide.tif")


def test_valid_detection_is_queued_with_location(client, slide):
    response = post_detection(client, {"image": {"path": slide}, "region": {"x": 0, "y": 0, "width": 64, "height": 64}})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "queued" and job["kind"] == "detection" and job["model"] == "threshold-test-v1"
    listed = client.get("/v1/jobs?state=queued")
    assert [j["id"] for j in validate(listed, "GET", "/v1/jobs")["jobs"]] == [job["id"]]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({}, 400, "image"),
        ({"image": {"path": "S"}, "bogus": 1}, 400, "bogus"),
        ({"image": {"path": "S", "extra": 1}}, 400, "image.extra"),
        ({"image": "S"}, 400, "image"),
        ({"image": {"path": 5}}, 400, "image.path"),
        ({"image": {"path": "relative/slide.tif"}}, 422, "image.path"),
        ({"image": {"path": "S"}, "pixel_size_um": "0.5"}, 400, "pixel_size_um"),
        ({"image": {"path": "S"}, "pixel_size_um": -1}, 422, "pixel_size_um"),
        ({"image": {"path": "S"}, "pixel_size_um": 0}, 422, "pixel_size_um"),
        ({"image": {"path": "S"}, "pixel_size_um": 1e300}, 422, "pixel_size_um"),
        ({"image": {"path": "S"}, "model": 3}, 400, "model"),
        ({"image": {"path": "S"}, "model": "no-such-model"}, 404, "model"),
        ({"image": {"path": "S"}, "model": "../../etc"}, 404, "model"),
        ({"image": {"path": "S"}, "options": {"threshold": 1.5}}, 422, "options.threshold"),
        ({"image": {"path": "S"}, "options": {"threshold": 0}}, 422, "options.threshold"),
        ({"image": {"path": "S"}, "options": {"threshold": True}}, 400, "options.threshold"),
        ({"image": {"path": "S"}, "options": {"tta": "rotate"}}, 422, "options.tta"),
        ({"image": {"path": "S"}, "options": {"object_type": "cell"}}, 422, "options.object_type"),
        ({"image": {"path": "S"}, "options": {"stain_normalization": "vahadane"}}, 422, "options.stain_normalization"),
        ({"image": {"path": "S"}, "options": {"batch_size": 4}}, 400, "options.batch_size"),
        ({"image": {"path": "S"}, "options": []}, 400, "options"),
        ({"image": {"path": "S"}, "region": {"x": 0, "y": 0, "width": 10}}, 400, "region.height"),
        ({"image": {"path": "S"}, "region": {"x": 0.5, "y": 0, "width": 10, "height": 10}}, 400, "region.x"),
        ({"image": {"path": "S"}, "region": {"x": -1, "y": 0, "width": 10, "height": 10}}, 422, "region.x"),
        ({"image": {"path": "S"}, "region": {"x": 0, "y": 0, "width": 0, "height": 10}}, 422, "region.width"),
        ({"image": {"path": "S"}, "region": {"x": 600, "y": 0, "width": 100, "height": 10}}, 422, "region"),
        ({"image": {"path": "S"}, "region": {"x": 0, "y": 0, "width": 10, "height": 10},
          "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}}, 422, "geometry"),
        # bow-tie: self-intersecting
        ({"image": {"path": "S"}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [100, 100], [100, 0],
                                                                                   [0, 100], [0, 0]]]}}, 422, "geometry"),
        # not closed
        ({"image": {"path": "S"}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 100],
                                                                                   [0, 100]]]}}, 422,
         "geometry.coordinates[0]"),
        ({"image": {"path": "S"}, "geometry": {"type": "Point", "coordinates": [1, 2]}}, 422, "geometry.type"),
        ({"image": {"path": "S"}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1], [0, 0]]]}},
         400, "geometry.coordinates[0][1][1]"),
        # outside the image
        ({"image": {"path": "S"}, "geometry": {"type": "Polygon", "coordinates": [[[5000, 5000], [5100, 5000],
                                                                                   [5100, 5100], [5000, 5000]]]}},
         422, "geometry"),
    ],
)
def test_bad_detection_fields_are_named(client, slide, body, status, field):
    body = json.loads(json.dumps(body).replace('"S"', json.dumps(slide)))
    response = post_detection(client, body)
    assert response.status_code == status, response.get_json()
    error = error_of(response)
    assert error["field"] == field
    assert field.split(".")[-1].split("[")[0] in error["message"]


def test_non_finite_numbers_and_bad_json_are_400(client, slide):
    for raw in ('{"image": {"path": "%s"}, "pixel_size_um": NaN}' % slide,
                '{"image": {"path": "%s"}, "pixel_size_um": Infinity}' % slide,
                '{"image": ', "[1, 2]", "", "[" * 100000):
        response = post_detection(client, raw)
        assert response.status_code == 400, raw[:50]
        assert error_of(response)["code"] == "bad_request"


def test_wrong_content_type_is_415(client, slide):
    response = client.post("/v1/detections", data=json.dumps({"image": {"path": slide}}), content_type="text/plain")
    validate(response, "POST", "/v1/detections")
    assert response.status_code == 415


def test_slide_problems_map_to_statuses(client, slides_root):
    cases = [
        (slides_root / "nocal.tif", 422, "missing_pixel_size"),
        (slides_root / "garbage.tif", 415, "unsupported_format"),
        (slides_root / "does-not-exist.tif", 404, "not_found"),
        (slides_root, 415, "unsupported_format"),
    ]
    for path, status, code in cases:
        response = post_detection(client, {"image": {"path": str(path)}})
        assert (response.status_code, error_of(response)["code"]) == (status, code), response.get_json()
    ok = post_detection(client, {"image": {"path": str(slides_root / "nocal.tif")}, "pixel_size_um": 0.5})
    assert ok.status_code == 202


def test_paths_outside_slides_roots_are_403_naming_roots(client, slides_root, outside_dir):
    attempts = [
        str(slides_root / ".." / outside_dir.name / "secret.tif"),  # `..`
        str(slides_root / "escape.tif"),  # symlink to a file outside
        str(slides_root / "escape_dir" / "secret.tif"),  # symlinked folder
        str(outside_dir / "secret.tif"),
        "/etc/passwd",
    ]
    for path in attempts:
        response = post_detection(client, {"image": {"path": path}})
        assert response.status_code == 403, path
        error = error_of(response)
        assert error["code"] == "forbidden_path" and str(slides_root.resolve()) in error["message"]
    # percent-encoding is not decoded: the literal name does not exist inside the root
    encoded = str(slides_root) + "/%2e%2e/" + outside_dir.name + "/secret.tif"
    response = post_detection(client, {"image": {"path": encoded}})
    assert response.status_code == 404


def test_request_too_large_is_413_json(app_factory, slide):
    client = app_factory(max_content_length=2048).test_client()
    body = {"image": {"path": slide}, "geometry": {"type": "Polygon",
                                                   "coordinates": [[[i, i % 7] for i in range(400)] + [[0, 0]]]}}
    response = post_detection(client, body)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


def test_unknown_route_and_method_are_json(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.put("/v1/health")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    response = client.get("/v1/jobs/..%2f..%2fetc%2fpasswd")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_jobs_query_validation(client):
    for query, field in (("state=done", "state"), ("kind=x", "kind"), ("limit=0", "limit"), ("foo=1", "foo")):
        response = client.get(f"/v1/jobs?{query}")
        validate(response, "GET", "/v1/jobs")
        assert response.status_code == 400 and error_of(response)["field"] == field
    response = client.get("/v1/jobs/" + "0" * 32)
    validate(response, "GET", "/v1/jobs/{id}")
    assert response.status_code == 404


# --- upload form ---------------------------------------------------------------------------------------
def png_bytes(width=96, height=64, mode="RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, fields: dict, image: bytes | None = None):
    data = {k: v for k, v in fields.items()}
    if image is not None:
        data["image"] = (io.BytesIO(image), "region.png")
    response = client.post("/v1/detections", data=data, content_type="multipart/form-data")
    validate(response, "POST", "/v1/detections")
    return response


def test_upload_form_accepts_and_validates(client):
    base = {"origin": "[1000, 2000]", "downsample": "2", "pixel_size_um": "0.25"}
    ok = upload(client, base, png_bytes())
    assert ok.status_code == 202, ok.get_json()
    assert ok.get_json()["upload_id"]
    ok_object_origin = upload(client, {**base, "origin": '{"x": 1, "y": 2}', "model": "tiny-test-v1"},
                              png_bytes(mode="L"))
    assert ok_object_origin.status_code == 202
    cases = [
        ({**base}, None, 400, "image"),
        ({k: v for k, v in base.items() if k != "origin"}, png_bytes(), 400, "origin"),
        ({**base, "colour": "red"}, png_bytes(), 400, "colour"),
        ({**base, "origin": "[1, 2, 3]"}, png_bytes(), 400, "origin"),
        ({**base, "origin": "[-5, 2]"}, png_bytes(), 422, "origin.x"),
        ({**base, "origin": "oops"}, png_bytes(), 400, "origin"),
        ({**base, "downsample": "NaN"}, png_bytes(), 400, "downsample"),
        ({**base, "downsample": "0"}, png_bytes(), 422, "downsample"),
        ({**base, "pixel_size_um": "-0.1"}, png_bytes(), 422, "pixel_size_um"),
        ({**base, "options": '{"tta": "nope"}'}, png_bytes(), 422, "options.tta"),
        ({**base, "region": '{"x": 1000, "y": 2000, "width": 500, "height": 10}'}, png_bytes(), 422, "region"),
        ({**base, "model": "nope"}, png_bytes(), 404, "model"),
        ({**base}, b"GIF89a not really", 415, "image"),
    ]
    for fields, image, status, field in cases:
        response = upload(client, fields, image)
        assert response.status_code == status, (fields, response.get_json())
        assert error_of(response).get("field") == field, (fields, response.get_json())
    # a region inside the upload's level-0 extent (1000..1192, 2000..2128) is fine
    inside = upload(client, {**base, "region": '{"x": 1010, "y": 2010, "width": 100, "height": 100}'}, png_bytes())
    assert inside.status_code == 202


def test_upload_pixel_limit(app_factory):
    client = app_factory(max_upload_pixels=1000).test_client()
    response = upload(client, {"origin": "[0, 0]", "downsample": "1", "pixel_size_um": "0.5"}, png_bytes(64, 64))
    assert response.status_code == 422 and "pixels" in error_of(response)["message"]


# --- labels and trainings ------------------------------------------------------------------------------
def square(x, y, size):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}


def label_set(slide, **overrides):
    doc = {
        "format": "hubseg-labelset/1",
        "image": {"path": slide},
        "pixel_size_um": PIXEL_SIZE_UM,
        "regions": [square(0, 0, 300)],
        "features": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": square(10, 10, 50),
             "properties": {"objectType": "annotation", "classification": {"name": "Glomerulus"}}},
        ]},
        "source": "api",
    }
    doc.update(overrides)
    return doc


def test_label_set_round_trip_and_validation(client, slide, slides_root):
    response = client.post("/v1/labels", json=label_set(slide))
    body = validate(response, "POST", "/v1/labels")
    assert response.status_code == 201 and response.headers["Location"] == f"/v1/labels/{body['id']}"
    assert body["regions_count"] == 1 and body["features_count"] == 1
    stored = validate(client.get(f"/v1/labels/{body['id']}"), "GET", "/v1/labels/{id}")
    assert stored["features"] == label_set(slide)["features"]
    assert stored["image"]["path"] == str((slides_root / "slide.tif").resolve())
    listing = validate(client.get("/v1/labels"), "GET", "/v1/labels")
    assert [s["id"] for s in listing["label_sets"]] == [body["id"]]

    bad = [
        (label_set(slide, format="v2"), 422, "format"),
        (label_set(slide, extra=1), 400, "extra"),
        (label_set("/etc/passwd"), 403, "image.path"),
        (label_set(slide, image={"upload_id": "f" * 32}), 404, None),
        (label_set(slide, image={"upload_id": "../x"}), 400, "image.upload_id"),
        (label_set(slide, regions="all"), 400, "regions"),
        (label_set(slide, regions=[{"type": "Polygon", "coordinates": [[[0, 0], [9, 9], [9, 0], [0, 9], [0, 0]]]}]),
         422, "regions[0]"),
        (label_set(slide, features={"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}}]}),
         422, "features.features[0].geometry.type"),
        (label_set(slide, regions=[], features={"type": "FeatureCollection", "features": []}), 422, "regions"),
        (label_set(slide, pixel_size_um=float("inf")), 400, None),
        (label_set(slide, source="email"), 422, "source"),
    ]
    for doc, status, field in bad:
        raw = json.dumps(doc)  # allow_nan: the server must refuse Infinity
        response = client.post("/v1/labels", data=raw, content_type="application/json")
        validate(response, "POST", "/v1/labels")
        assert response.status_code == status, (doc, response.get_json())
        if field:
            assert error_of(response)["field"] == field
    missing = client.get("/v1/labels/" + "a" * 32)
    validate(missing, "GET", "/v1/labels/{id}")
    assert missing.status_code == 404


def test_training_request_validation(client, slide):
    response = client.post("/v1/trainings", json={"label_sets": "all"})
    validate(response, "POST", "/v1/trainings")
    assert response.status_code == 422 and error_of(response)["field"] == "label_sets"
    label_id = client.post("/v1/labels", json=label_set(slide)).get_json()["id"]
    cases = [
        ({"label_sets": []}, 422, "label_sets"),
        ({"label_sets": ["x"]}, 400, "label_sets[0]"),
        ({"label_sets": ["b" * 32]}, 404, None),
        ({"label_sets": "some"}, 422, "label_sets"),
        ({"label_sets": "all", "base_model": "nope"}, 404, "base_model"),
        ({"label_sets": "all", "params": {"epochs": 0}}, 422, "params.epochs"),
        ({"label_sets": "all", "params": {"epochs": 2.5}}, 400, "params.epochs"),
        ({"label_sets": "all", "params": {"learning_rate": 5}}, 422, "params.learning_rate"),
        ({"label_sets": "all", "params": {"dropout": 0.1}}, 400, "params.dropout"),
        ({"label_sets": "all", "activate": "yes"}, 400, "activate"),
        ({"label_sets": "all", "extra": True}, 400, "extra"),
    ]
    for body, status, field in cases:
        response = client.post("/v1/trainings", json=body)
        validate(response, "POST", "/v1/trainings")
        assert response.status_code == status, (body, response.get_json())
        if field:
            assert error_of(response)["field"] == field
    ok = client.post("/v1/trainings", json={"label_sets": [label_id], "base_model": "tiny-test-v1",
                                            "params": {"epochs": 1}, "activate": False})
    job = validate(ok, "POST", "/v1/trainings")
    assert ok.status_code == 202 and job["kind"] == "training" and job["model"] == "tiny-test-v1"


def test_models_endpoints(client):
    listing = validate(client.get("/v1/models"), "GET", "/v1/models")
    names = [m["name"] for m in listing["models"]]
    assert {"threshold-test-v1", "tiny-test-v1"} <= set(names)
    assert listing["active_model"] == "threshold-test-v1"
    response = client.post("/v1/models/tiny-test-v1/activate")
    assert validate(response, "POST", "/v1/models/{name}/activate")["active"] is True
    assert validate(client.get("/v1/health"), "GET", "/v1/health")["active_model"] == "tiny-test-v1"
    for name in ("nope", "..", "%2e%2e%2fetc"):
        response = client.get(f"/v1/models/{name}")
        validate(response, "GET", "/v1/models/{name}")
        assert response.status_code == 404


def test_error_bodies_never_leak_tracebacks(client, monkeypatch):
    from hubseg_server.services import Services

    def broken(self):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Services, "model_names", broken)
    response = client.get("/v1/models/anything")
    validate(response, "GET", "/v1/models/{name}")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)


def test_region_check_uses_slide_bounds(client, slide):
    width, height = SLIDE_SIZE
    ok = post_detection(client, {"image": {"path": slide}, "region": {"x": 0, "y": 0, "width": width, "height": height}})
    assert ok.status_code == 202
    over = post_detection(client, {"image": {"path": slide},
                                   "region": {"x": 0, "y": 0, "width": width, "height": height + 1}})
    assert over.status_code == 422


def test_detection_options_reach_the_engine_with_valid_stain_normalization():
    from hubseg_server.request_options import parse_options
    from hubseg_server.engine import detection_options

    for method in ("model", "none", "macenko", "reinhard"):
        options = detection_options(parse_options({"stain_normalization": method, "tta": "flips"}))
        assert options.stain_normalization == method
        assert options.tta == "flips"
