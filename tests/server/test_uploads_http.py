"""POST /v1/uploads over real HTTP (pixels for self-training the server cannot read itself)."""

from __future__ import annotations

import io

import numpy as np

from tests.support.server import validate


def png(width: int = 48, height: int = 32) -> bytes:
    from PIL import Image

    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, :, 0] = np.arange(width, dtype=np.uint8)[None, :]
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(server, image: bytes | None = png(), **fields):
    files = {"image": ("image.png", image, "image/png")} if image is not None else None
    response = server.post("/v1/uploads", files=files, data=fields)
    validate(response, "POST", "/v1/uploads")
    return response


def test_an_upload_is_stored_with_its_size_and_pixel_size(server):
    response = upload(server, pixel_size_um="2.0")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"], body["pixel_size_um"]) == (48, 32, 2.0)
    assert body["origin"] == [0, 0] and body["downsample"] == 1
    assert response.headers["Location"] == f"/v1/uploads/{body['upload_id']}"
    stored = list((server.data_dir / "uploads").glob(f"{body['upload_id']}.*"))
    assert [p.suffix for p in stored] == [".png"] and stored[0].read_bytes() == png()
    # origin/downsample as the detection upload form has them
    placed = upload(server, pixel_size_um="0.5", origin="[100, 200]", downsample="4").json()
    assert placed["origin"] == [100, 200] and placed["downsample"] == 4 and placed["pixel_size_um"] == 0.5
    # TIFF is kept as TIFF
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 100, 50)).save(buffer, format="TIFF")
    tiff = server.post("/v1/uploads", files={"image": ("image.tif", buffer.getvalue(), "image/tiff")},
                       data={"pixel_size_um": "1"})
    assert tiff.status_code == 201 and (tiff.json()["width"], tiff.json()["height"]) == (20, 10), tiff.text
    assert (server.data_dir / "uploads" / f"{tiff.json()['upload_id']}.tif").read_bytes() == buffer.getvalue()
    # DELETE /v1/uploads/{id} applies to them
    assert server.delete(f"/v1/uploads/{body['upload_id']}").status_code == 204
    assert not list((server.data_dir / "uploads").glob(f"{body['upload_id']}.*"))


def test_bad_uploads_name_the_field(server):
    cases = [
        (dict(image=None, pixel_size_um="2"), 400, "image"),
        (dict(), 400, "pixel_size_um"),
        (dict(pixel_size_um="abc"), 400, "pixel_size_um"),
        (dict(pixel_size_um="-1"), 422, "pixel_size_um"),
        (dict(pixel_size_um="500"), 422, "pixel_size_um"),
        (dict(image=b"these bytes are no image at all", pixel_size_um="2"), 415, "image"),
        (dict(image=b"", pixel_size_um="2"), 400, "image"),
        (dict(pixel_size_um="2", downsample="0"), 422, "downsample"),
        (dict(pixel_size_um="2", origin="[1]"), 400, "origin"),
        (dict(pixel_size_um="2", model="tiny-test-v1"), 400, "model"),
    ]
    before = set((server.data_dir / "uploads").iterdir())
    for fields, status, field in cases:
        response = upload(server, **fields)
        assert response.status_code == status, (fields, response.text)
        assert response.json()["error"]["field"] == field, (fields, response.text)
    as_json = server.post("/v1/uploads", json={"image": "x", "pixel_size_um": 2})
    validate(as_json, "POST", "/v1/uploads")
    assert as_json.status_code == 400 and as_json.json()["error"]["field"] == "image"
    assert set((server.data_dir / "uploads").iterdir()) == before, "a refused upload left a file behind"


def test_a_training_job_rechecks_its_uploads_when_it_runs(tmp_path):
    """An upload gone between the POST and the run (e.g. a data directory restored without it) fails the job with
    a message naming the field, before any model is loaded."""
    import pytest

    from hubseg.errors import NotFoundError
    from hubseg_server.engine import run_training
    from hubseg_server.store import Store

    store = Store(tmp_path)
    upload_id = store.add_upload(png(), ".png", 48, 32, (0, 0), 1.0, 2.0)
    store.get_upload(upload_id)["path"].unlink()
    request = {"base_model": "any", "label_sets": [], "params": {}, "unlabelled": [{"upload_id": upload_id}]}
    with pytest.raises(NotFoundError, match=r"unlabelled\[0\]\.upload_id.*POST /v1/uploads"):
        run_training(request, None, store, "cpu", [], progress=None, should_cancel=None)
