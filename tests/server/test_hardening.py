"""no single request stalls or exhausts the server (real HTTP, 127.0.0.1).

Every loop here is bounded in count and time; nothing measures speed.
"""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import PIXEL_SIZE_UM
from tests.support.server import ServerProcess, validate


def square(x, y, size):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}


def label_set(path, **extra):
    document = {"format": "hubseg-labelset/1", "image": {"path": str(path)}, "pixel_size_um": PIXEL_SIZE_UM,
                "regions": [square(0, 0, 200)], "source": "api",
                "features": {"type": "FeatureCollection", "features": [
                    {"type": "Feature", "geometry": square(10, 10, 40),
                     "properties": {"classification": {"name": "Glomerulus"}}}]}}
    document.update(extra)
    return document


@pytest.fixture(scope="module")
def hard_root(tmp_path_factory, slides_root):
    """A slides root with a calibrated slide, a FIFO, a folder and a large flat PNG."""
    from PIL import Image

    root = tmp_path_factory.mktemp("hard-slides")
    shutil.copy(slides_root / "slide.tif", root / "slide.tif")
    os.mkfifo(root / "pipe.tif")
    (root / "folder.tif").mkdir()
    Image.new("RGB", (4000, 3000), (232, 182, 204)).save(root / "big.png")  # 12 MP, compresses to a few KB
    return root


@pytest.fixture(scope="module")
def hard(tmp_path_factory, template_data_dir, slides_root, hard_root):
    """A server with small limits so every limit can be hit cheaply."""
    data = tmp_path_factory.mktemp("hard-data") / "data"
    shutil.copytree(template_data_dir, data)
    args = ["--max-tiles", "20", "--max-json-mb", "1", "--max-json-values", "50000", "--max-image-mp", "10",
            "--threads", "4"]
    with ServerProcess(data, slides_roots=[slides_root, hard_root], extra_args=args) as proc:
        yield proc


def error_of(response, status, field=None):
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# --- pixel size range, tile budget, cancel -----------------------------------------------------
@pytest.mark.parametrize("value", [1000, 1e-300, 0.01, 25])
def test_implausible_pixel_size_is_refused_naming_field_and_range(hard, hard_root, value):
    response = hard.post("/v1/detections", json={"image": {"path": str(hard_root / "slide.tif")}, "pixel_size_um": value})
    error = error_of(response, 422, "pixel_size_um")
    assert "0.05" in error["message"] and "20" in error["message"]
    validate(response, "POST", "/v1/detections")


def test_over_budget_detection_is_refused_before_queuing(hard, hard_root):
    slide = str(hard_root / "slide.tif")
    before = len(hard.get("/v1/jobs").json()["jobs"])
    # 640×448 px at 0.5 µm/px → 320×224 px at the threshold model's 1 µm/px → 35 tiles of 64 px > 20
    error = error_of(hard.post("/v1/detections", json={"image": {"path": slide}}), 422, "image.path")
    assert "35 tiles" in error["message"] and "20" in error["message"] and "--max-tiles" in error["message"]
    error = error_of(hard.post("/v1/detections", json={"image": {"path": slide}, "pixel_size_um": 2}), 422, "pixel_size_um")
    assert "tiles" in error["message"]
    region = {"x": 0, "y": 0, "width": 640, "height": 448}
    error_of(hard.post("/v1/detections", json={"image": {"path": slide}, "region": region}), 422, "region")
    assert len(hard.get("/v1/jobs").json()["jobs"]) == before  # nothing was queued
    small = hard.post("/v1/detections", json={"image": {"path": slide}, "region": {"x": 0, "y": 0, "width": 200, "height": 200}})
    assert small.status_code == 202
    assert hard.wait_job(small.json()["id"])["state"] == "succeeded"


def test_over_budget_batch_slide_fails_with_the_limit(hard, hard_root):
    """A batch checks each slide against --max-tiles when it runs it: that slide fails, the batch goes on."""
    response = hard.post("/v1/batches", json={"images": [{"path": str(hard_root / "slide.tif")}]})
    assert response.status_code == 202, response.text[:500]
    job = hard.wait_job(response.json()["id"])
    assert job["state"] == "succeeded", job
    slides = hard.get(f"/v1/batches/{job['id']}").json()["slides"]
    assert [s["status"] for s in slides] == ["failed"]
    assert "35 tiles" in slides[0]["error"] and "20" in slides[0]["error"]


def test_cancel_of_a_huge_job_takes_effect_quickly(server, slides_root):
    # 20 µm/px on a 640×448 slide: ~50k tiles of the threshold model (under the default budget of 60k)
    job = server.post("/v1/detections", json={"image": {"path": str(slides_root / "slide.tif")}, "pixel_size_um": 20}).json()
    server.wait_job(job["id"], states=("running",), timeout=60)
    server.delete(f"/v1/jobs/{job['id']}")
    done = server.wait_job(job["id"], timeout=30)
    assert done["state"] == "cancelled", done
    assert done["progress"]["total"] > 40_000 and done["progress"]["done"] < done["progress"]["total"]


# --- non-regular files ------------------------------------------------------------------
def test_fifo_and_folder_are_refused_without_blocking(hard, hard_root):
    pipe, folder = str(hard_root / "pipe.tif"), str(hard_root / "folder.tif")
    for _ in range(6):  # more than the server's 4 HTTP threads: none may block on the FIFO
        error_of(hard.post("/v1/detections", json={"image": {"path": pipe}}, timeout=10), 422, "image.path")
        error_of(hard.post("/v1/labels", json=label_set(pipe), timeout=10), 422, "image.path")
    error_of(hard.post("/v1/detections", json={"image": {"path": folder}}), 415, "image.path")
    error_of(hard.post("/v1/labels", json=label_set(folder)), 415, "image.path")
    error_of(hard.post("/v1/labels", json=label_set(hard_root / "missing.tif")), 404, "image.path")
    assert hard.get("/v1/health", timeout=5).status_code == 200


# --- lone surrogates ----------------------------------------------------------------------------
def test_lone_surrogates_are_400_naming_the_field(hard, hard_root):
    slide = hard_root / "slide.tif"
    cases = [
        ("/v1/detections", {"image": {"path": str(slide) + "\ud800"}}, "image.path"),
        ("/v1/detections", {"image": {"path": str(slide)}, "model": "\udc00x"}, "model"),
        ("/v1/labels", label_set("/tmp/\ud800.tif"), "image.path"),
        ("/v1/labels", label_set(slide, model="m\ud800"), "model"),
        ("/v1/labels", label_set(slide, created="\udfff"), "created"),
    ]
    bad_props = label_set(slide)
    bad_props["features"]["features"][0]["properties"]["note"] = "a\ud800b"
    cases.append(("/v1/labels", bad_props, "features.features[0].properties.note"))
    for path, body, field in cases:
        response = hard.post(path, json=body)  # requests escapes the surrogate as \ud800 in the JSON text
        error_of(response, 400, field)
        validate(response, "POST", path)


text_with_surrogates = st.text(
    alphabet=st.one_of(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.characters(codec="utf-8")),
    min_size=1, max_size=20,
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(value=text_with_surrogates, where=st.sampled_from(["path", "model", "created", "source", "property"]))
def test_fuzz_strings_with_surrogates_never_5xx(hard, hard_root, value, where):
    slide = str(hard_root / "slide.tif")
    if where == "path":
        responses = [hard.post("/v1/detections", json={"image": {"path": "/" + value}}),
                     hard.post("/v1/labels", json=label_set("/" + value))]
    elif where == "property":
        body = label_set(slide)
        body["features"]["features"][0]["properties"][value] = value
        responses = [hard.post("/v1/labels", json=body)]
    else:
        responses = [hard.post("/v1/labels", json=label_set(slide, **{where: value}))]
        if where == "model":
            responses.append(hard.post("/v1/detections", json={"image": {"path": slide}, "model": value}))
    for response in responses:
        assert response.status_code < 500, response.text[:300]


# --- JSON bodies and flat images ------------------------------------------------------------------
def test_json_body_budget_is_checked_before_parsing(hard):
    wide = b"[" + b"[]," * 400_000 + b"[]]"  # 1.2 MB > 1 MiB
    response = hard.post("/v1/labels", data=wide, headers={"Content-Type": "application/json"})
    error = error_of(response, 413)
    assert "--max-json-mb" in error["message"]
    many = b'{"a": [' + b"[]," * 60_000 + b"[]]}"  # 180 kB but 60k values > 50k
    error = error_of(hard.post("/v1/labels", data=many, headers={"Content-Type": "application/json"}), 413)
    assert "--max-json-values" in error["message"]
    assert hard.get("/v1/health", timeout=5).status_code == 200


def test_flat_png_over_the_limit_is_refused_at_post(hard, hard_root):
    response = hard.post("/v1/detections", json={"image": {"path": str(hard_root / "big.png")}, "pixel_size_um": 0.5})
    error = error_of(response, 422, "image.path")
    assert "12 MP" in error["message"] and "--max-image-mp" in error["message"]


# --- waitress limits ------------------------------------------------------------------------------
def _host_port(proc):
    host, port = proc.url.rsplit("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def test_unterminated_chunk_size_line_is_refused(hard):
    with socket.create_connection(_host_port(hard), timeout=10) as sock:
        sock.sendall(b"POST /v1/labels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(64):  # 64 × 1 KiB of hex digits, never a CRLF
                sock.sendall(b"f" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server already answered and closed
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert hard.get("/v1/health", timeout=5).status_code == 200


def test_half_open_connections_do_not_starve_health(hard):
    sockets = []
    try:
        for _ in range(110):  # over waitress's default connection limit of 100
            sock = socket.create_connection(_host_port(hard), timeout=10)
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # never finished
            sockets.append(sock)
        assert hard.get("/v1/health", timeout=10).status_code == 200
    finally:
        for sock in sockets:
            sock.close()


def test_idle_connection_is_closed_after_client_timeout(tmp_path, template_data_dir, slides_root):
    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    with ServerProcess(data, slides_roots=[slides_root], extra_args=["--client-timeout", "2"]) as proc:
        with socket.create_connection(_host_port(proc), timeout=20) as sock:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed by the server, not by our 20 s timeout
            assert time.monotonic() - started < 15


# --- re-queued jobs re-check the slides roots -----------------------------------------------------
def test_requeued_job_outside_the_new_roots_fails_at_start(tmp_path, data_dir, slides_root, hard_root):
    first = ServerProcess(data_dir, slides_roots=[slides_root, hard_root]).start()
    try:
        slow = first.post("/v1/detections", json={"image": {"path": str(slides_root / "slow.tif")}, "model": "tiny-test-v1"}).json()
        queued = first.post("/v1/detections", json={"image": {"path": str(hard_root / "slide.tif")}}).json()
        first.wait_job(slow["id"], states=("running",))
        assert first.get(f"/v1/jobs/{queued['id']}").json()["state"] == "queued"
    finally:
        first.kill()
    second = ServerProcess(data_dir, slides_roots=[slides_root]).start()
    try:
        job = validate(second.get(f"/v1/jobs/{queued['id']}"), "GET", "/v1/jobs/{id}")
        assert job["state"] == "failed" and job["error"]["code"] == "forbidden_path", job
        assert "restart" in job["error"]["message"] and "slides roots" in job["error"]["message"]
    finally:
        second.stop()


# --- label sets: image validated, deletable, "all" skips broken ones ----------------------------
def test_label_sets_can_be_deleted_and_all_skips_missing_images(tmp_path, data_dir, slides_root):
    root = tmp_path / "slides"
    root.mkdir()
    kept, gone = root / "kept.tif", root / "gone.tif"
    for path in (kept, gone):
        shutil.copy(slides_root / "slide.tif", path)
    with ServerProcess(data_dir, slides_roots=[root]) as proc:
        kept_id = proc.post("/v1/labels", json=label_set(kept)).json()["id"]
        gone_id = proc.post("/v1/labels", json=label_set(gone)).json()["id"]
        extra_id = proc.post("/v1/labels", json=label_set(kept)).json()["id"]
        assert proc.delete(f"/v1/labels/{extra_id}").status_code == 204
        error_of(proc.get(f"/v1/labels/{extra_id}"), 404)
        error_of(proc.delete(f"/v1/labels/{extra_id}"), 404)
        gone.unlink()
        listed = proc.post("/v1/trainings", json={"base_model": "tiny-test-v1", "label_sets": [gone_id]})
        error_of(listed, 422, "label_sets[0]")
        params = {"epochs": 1, "batch_size": 2, "seed": 0}
        job = proc.post("/v1/trainings", json={"base_model": "tiny-test-v1", "label_sets": "all", "params": params})
        assert job.status_code == 202, job.text
        done = validate(proc.get(f"/v1/jobs/{job.json()['id']}"), "GET", "/v1/jobs/{id}")
        done = proc.wait_job(done["id"], timeout=300)
        assert done["state"] == "succeeded", done
        assert len(done["warnings"]) == 1 and gone_id in done["warnings"][0], done["warnings"]
        assert kept_id not in " ".join(done["warnings"])


def test_upload_can_be_deleted(server):
    from .test_http_flow import detect_upload  # the upload helper of the flow tests

    job = detect_upload(server, 256, 128, 2)
    upload_id = job["upload_id"]
    server.wait_job(job["id"])
    assert server.delete(f"/v1/uploads/{upload_id}").status_code == 204
    error_of(server.delete(f"/v1/uploads/{upload_id}"), 404)


# --- result conflicts say why ---------------------------------------------------------------------
def test_result_of_cancelled_job_does_not_say_poll(server, slides_root):
    job = server.post("/v1/detections", json={"image": {"path": str(slides_root / "slow.tif")}, "model": "tiny-test-v1"}).json()
    server.delete(f"/v1/jobs/{job['id']}")
    assert server.wait_job(job["id"])["state"] == "cancelled"
    error = error_of(server.get(f"/v1/jobs/{job['id']}/result"), 409)
    assert "cancelled" in error["message"] and "poll" not in error["message"]
