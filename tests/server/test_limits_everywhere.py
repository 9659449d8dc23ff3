"""Every route obeys detection's limits; uploads, bit depths and waitress's own replies (real HTTP, 127.0.0.1).

Self-training, batches and uploads get the pixel-size range and tile budget of ``hubseg.limits``; the same
cause gets the same code on every route; 16-bit images keep their data. Every loop is bounded in count and
time; nothing measures speed.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import struct
import zlib

import numpy as np
import pytest

from .conftest import DISKS, PIXEL_SIZE_UM, SLIDE_SIZE
from tests.support.server import ServerProcess, slide_image, validate

GATED = "gated-test-v1"


def register_gated(data_dir):
    """A threshold model with an energy gate: a teacher self-training accepts."""
    from hubseg.models.testing import make_threshold_model

    make_threshold_model(data_dir, name=GATED, pixel_size_um=1.0, tile_size=64,
                         energy_gate={"cutoff": 1.5, "auroc": 0.9})


@pytest.fixture(scope="module")
def lim_root(tmp_path_factory, slides_root):
    root = tmp_path_factory.mktemp("lim-slides")
    shutil.copy(slides_root / "slide.tif", root / "slide.tif")
    os.mkfifo(root / "pipe.tif")
    (root / "folder.tif").mkdir()
    os.symlink(os.path.realpath(slides_root / "escape.tif"), root / "outside.tif")
    return root


@pytest.fixture(scope="module")
def lim(tmp_path_factory, template_data_dir, lim_root):
    data = tmp_path_factory.mktemp("lim-data") / "data"
    shutil.copytree(template_data_dir, data)
    register_gated(data)
    with ServerProcess(data, slides_roots=[lim_root], extra_args=["--max-tiles", "100"]) as proc:
        yield proc


def error_of(response, status, field=None) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def png16(image: np.ndarray) -> bytes:
    import imagecodecs  # PIL cannot write 48-bit PNGs

    return imagecodecs.png_encode(image.astype(np.uint16))


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def tiff_bytes(image: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image, photometric="rgb" if image.ndim == 3 else "minisblack")
    return buffer.getvalue()


def upload(server, image: bytes, route="/v1/uploads", filename="region.png", **fields):
    return server.post(route, files={"image": (filename, image)}, data=fields)


# --- the pixel-size range and the tile budget on every route ---------------------------------------------
@pytest.mark.parametrize("value", [1e-300, 0.001, 21, 1000])
def test_self_training_pixel_size_has_detections_range(lim, lim_root, value):
    body = {"base_model": GATED, "unlabelled": [{"path": str(lim_root / "slide.tif"), "pixel_size_um": value}]}
    response = lim.post("/v1/trainings", json=body)
    message = error_of(response, 422, "unlabelled[0].pixel_size_um")["message"]
    assert "0.05" in message and "20" in message
    validate(response, "POST", "/v1/trainings")


def test_self_training_images_have_detections_tile_budget(lim, lim_root):
    slide = str(lim_root / "slide.tif")
    detection = lim.post("/v1/detections", json={"image": {"path": slide}, "pixel_size_um": 20, "model": GATED})
    assert "tiles" in error_of(detection, 422, "pixel_size_um")["message"]
    training = lim.post("/v1/trainings", json={"base_model": GATED,
                                               "unlabelled": [{"path": slide, "pixel_size_um": 20}]})
    assert "limit of 100" in error_of(training, 422, "unlabelled[0].pixel_size_um")["message"]
    # an upload's pixels at 20 µm/px: stored fine, refused as a self-training image
    stored = upload(lim, png_bytes(slide_image(*SLIDE_SIZE, DISKS)), pixel_size_um="20")
    assert stored.status_code == 201, stored.text
    on_upload = lim.post("/v1/trainings", json={"base_model": GATED,
                                                "unlabelled": [{"upload_id": stored.json()["upload_id"]}]})
    assert "tiles" in error_of(on_upload, 422, "unlabelled[0].upload_id")["message"]
    validate(on_upload, "POST", "/v1/trainings")
    # in range and within budget: accepted, then cancelled (this test is about the refusal)
    fine = lim.post("/v1/trainings", json={"base_model": GATED, "unlabelled": [{"path": slide}]})
    assert fine.status_code == 202, fine.text
    lim.delete(f"/v1/jobs/{fine.json()['id']}")
    assert lim.wait_job(fine.json()["id"], timeout=120)["state"] in ("cancelled", "succeeded", "failed")


def test_threshold_only_base_model_is_refused_for_self_training(lim, lim_root):
    body = {"base_model": "threshold-test-v1", "unlabelled": [{"path": str(lim_root / "slide.tif")}]}
    response = lim.post("/v1/trainings", json=body)
    assert "energy gate" in error_of(response, 422, "base_model")["message"]
    validate(response, "POST", "/v1/trainings")


@pytest.mark.parametrize("name", ["missing.tif", "pipe.tif", "folder.tif", "outside.tif"])
def test_same_cause_same_code_on_every_route(lim, lim_root, name):
    path = str(lim_root / name)
    detection = lim.post("/v1/detections", json={"image": {"path": path}, "pixel_size_um": PIXEL_SIZE_UM})
    training = lim.post("/v1/trainings", json={"base_model": GATED, "unlabelled": [{"path": path}]})
    batch = lim.post("/v1/batches", json={"images": [{"path": path}]})
    codes = [(r.status_code, r.json()["error"]["code"]) for r in (detection, training, batch)]
    assert codes[0] == codes[1] == codes[2], codes
    assert codes[0][0] in (403, 404, 415, 422), codes
    assert [r.json()["error"]["field"] for r in (detection, training, batch)] == [
        "image.path", "unlabelled[0].path", "images[0].path"]
    for response, route in ((detection, "/v1/detections"), (training, "/v1/trainings"), (batch, "/v1/batches")):
        validate(response, "POST", route)


# --- uploads -----------------------------------------------------------------------------------------------
def test_upload_downsample_must_give_plausible_pixels(lim):
    image = png_bytes(slide_image(64, 64, []))
    for route, extra in (("/v1/uploads", {}), ("/v1/detections", {"origin": "[0, 0]"})):
        response = upload(lim, image, route=route, pixel_size_um="0.5", downsample="1e-308", **extra)
        message = error_of(response, 422, "downsample")["message"]
        assert "0.05" in message and "20" in message, message
        validate(response, "POST", route)
    assert upload(lim, image, pixel_size_um="0.5", downsample="4").status_code == 201


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width × height`` pixels (its data is one empty chunk): a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_pixel_bomb_is_too_many_pixels_not_undecodable(lim):
    response = upload(lim, png_header_only(20000, 20000), pixel_size_um="0.5")
    message = error_of(response, 422, "image")["message"]
    assert "too many pixels" in message and "400.0 MP" in message and "limit 100 MP" in message, message
    validate(response, "POST", "/v1/uploads")


def test_multipart_header_that_is_not_utf8_is_named(lim):
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"\xff\xfe.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + png_bytes(slide_image(8, 8, [])) + b"\r\n--XX\r\n"
            b"Content-Disposition: form-data; name=\"pixel_size_um\"\r\n\r\n0.5\r\n--XX--\r\n")
    response = lim.post("/v1/uploads", data=body, headers={"Content-Type": "multipart/form-data; boundary=XX"})
    message = error_of(response, 400)["message"]
    assert "UTF-8" in message and "exactly one" not in message, message
    validate(response, "POST", "/v1/uploads")


def test_upload_is_stored_as_sent(lim):
    data = png_bytes(slide_image(*SLIDE_SIZE, DISKS))
    response = upload(lim, data, pixel_size_um="0.5")
    assert response.status_code == 201, response.text
    stored = list((lim.data_dir / "uploads").glob(f"{response.json()['upload_id']}*"))
    assert len(stored) == 1 and stored[0].read_bytes() == data


# --- 16-bit and float pixels keep their data ------------------------------------------------------------------
def deep_slide(scale: int) -> np.ndarray:
    """The synthetic slide at 16 bits per channel: every 8-bit value times ``scale``."""
    return slide_image(*SLIDE_SIZE, DISKS).astype(np.uint16) * scale


def found_disks(server, job_id) -> int:
    job = server.wait_job(job_id, timeout=120)
    assert job["state"] == "succeeded", job
    return len(server.get(f"/v1/jobs/{job_id}/result").json()["features"])


@pytest.mark.parametrize("kind", ["PNG", "TIFF"])
def test_sixteen_bit_uploads_are_scaled_by_their_range(lim, kind):
    image = deep_slide(120)  # max 232·120 = 27840: 15 bits used; the high byte alone would make it dark
    data = png16(image) if kind == "PNG" else tiff_bytes(image)
    response = upload(lim, data, route="/v1/detections", filename="region." + kind.lower(),
                      origin="[0, 0]", downsample="1", pixel_size_um=str(PIXEL_SIZE_UM))
    assert response.status_code == 202, response.text
    assert found_disks(lim, response.json()["id"]) == len(DISKS)


def test_sixteen_bit_slide_on_disk_is_scaled_like_an_upload(lim, lim_root):
    from tests.support.server import write_slide

    write_slide(lim_root / "deep.tif", deep_slide(120), PIXEL_SIZE_UM)
    response = lim.post("/v1/detections", json={"image": {"path": str(lim_root / "deep.tif")}})
    assert response.status_code == 202, response.text
    assert found_disks(lim, response.json()["id"]) == len(DISKS)


# --- waitress's own replies ---------------------------------------------------------------------------------
def raw_reply(server, payload: bytes) -> tuple[int, dict, bytes]:
    host, port = server.url.replace("http://", "").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@pytest.mark.parametrize("payload, status", [
    (b"NOT A REQUEST\r\n\r\n", 400),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    (b"POST /v1/labels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
     413),
])
def test_waitress_replies_are_json(lim, payload, status):
    code, headers, body = raw_reply(lim, payload)
    assert code == status and headers["content-type"].startswith("application/json"), (code, headers, body[:200])
    import json

    error = json.loads(body)["error"]
    assert error["code"] and error["message"], error

