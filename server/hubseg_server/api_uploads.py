"""Uploaded pixels: POST /v1/uploads (201), DELETE /v1/uploads/{id}, and the multipart parsing the detection
upload form shares (an ``image`` file part plus ``origin`` / ``downsample`` / ``pixel_size_um`` text parts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import Blueprint, Response, jsonify, request

from hubseg.errors import HubsegError

from hubseg_server.errors import bad_request, conflict, from_hubseg, invalid, not_found
from hubseg_server.slides import pixel_size
from hubseg_server.validation import ID_PATTERN, MAX_COORDINATE, check_object, loads_strict, number

blueprint = Blueprint("uploads", __name__, url_prefix="/v1")

FIELDS = ("image", "pixel_size_um", "origin", "downsample")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class UploadedImage:
    """A decoded, validated upload (not stored yet). ``pixel_size_um`` is of level 0: the uploaded pixels are
    ``pixel_size_um × downsample`` µm."""

    data: bytes
    width: int
    height: int
    origin: tuple[float, float]
    downsample: float
    pixel_size_um: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Level-0 extent (x0, y0, x1, y1) the uploaded pixels cover."""
        x, y = self.origin
        return (x, y, x + self.width * self.downsample, y + self.height * self.downsample)

    def store(self, store) -> str:
        """Keep the bytes as sent (PNG or TIFF) in the data directory; returns the upload id."""
        suffix = ".png" if self.data[:8] == PNG_MAGIC else ".tif"
        return store.add_upload(self.data, suffix, self.width, self.height, self.origin, self.downsample,
                                self.pixel_size_um)


def text_part(name: str) -> str:
    values = request.form.getlist(name)
    if len(values) != 1:
        raise bad_request(f"form field '{name}' must be sent exactly once", name)
    return values[0]


def json_part(name: str):
    return loads_strict(text_part(name), name)


def _origin(value) -> tuple[float, float]:
    if isinstance(value, dict):
        check_object(value, "origin", ("x", "y"), ("x", "y"))
        value = [value["x"], value["y"]]
    if not isinstance(value, list) or len(value) != 2:
        raise bad_request("'origin' must be JSON [x, y] or {\"x\": .., \"y\": ..} (level-0 px)", "origin")
    x = number(value[0], "origin.x", minimum=0, maximum=MAX_COORDINATE)
    y = number(value[1], "origin.y", minimum=0, maximum=MAX_COORDINATE)
    return (x, y)


def upload_form(allowed: tuple[str, ...], required: tuple[str, ...]) -> tuple[tuple[float, float], float, float]:
    """Check the form's parts (known names, exactly one ``image`` file, the ``required`` text fields) and parse the
    cheap ones: (origin, downsample, pixel_size_um); a missing origin is (0, 0) and a missing downsample 1."""
    parts = list(request.form.keys()) + list(request.files.keys())
    unknown = sorted(set(parts) - set(allowed))
    if unknown:
        raise bad_request(f"unknown form field {unknown[0]!r}; valid fields: {', '.join(allowed)}", unknown[0])
    files = request.files.getlist("image")
    if len(files) != 1 or "image" in request.form:
        raise bad_request("form field 'image' must be exactly one file part (PNG or TIFF, RGB)", "image")
    for name in required:
        if name not in request.form:
            raise bad_request(f"missing required form field '{name}'", name)
    origin = _origin(json_part("origin")) if "origin" in request.form else (0.0, 0.0)
    downsample = number(json_part("downsample"), "downsample", exclusive_minimum=0, maximum=1e4) \
        if "downsample" in request.form else 1.0
    size_um = pixel_size(json_part("pixel_size_um"))
    return origin, downsample, size_um


def decode_upload(svc, origin: tuple[float, float], downsample: float, size_um: float) -> UploadedImage:
    """Read and decode the ``image`` part (PNG/TIFF, at most ``settings.max_upload_pixels``) of a checked form."""
    from hubseg_server.engine import load_upload_rgb

    data = request.files["image"].read()
    if not data:
        raise bad_request("form field 'image' is empty", "image")
    try:
        rgb = load_upload_rgb(data, svc.settings.max_upload_pixels)
    except HubsegError as error:
        raise from_hubseg(error, "image") from None
    height, width = rgb.shape[:2]
    image = UploadedImage(data, int(width), int(height), origin, downsample, size_um)
    if not all(math.isfinite(b) and abs(b) <= MAX_COORDINATE for b in image.bounds):
        raise invalid("'origin' + image size × 'downsample' lies outside any plausible slide", "downsample")
    return image


@blueprint.post("/uploads")
def create_upload():
    """201 ``{upload_id, width, height, pixel_size_um, origin, downsample}``: pixels kept for later requests
    (``"unlabelled": [{"upload_id": ...}]`` of POST /v1/trainings, ``"image": {"upload_id": ...}`` of a label set)."""
    from hubseg_server.services import services

    svc = services()
    if (request.mimetype or "").lower() != "multipart/form-data":
        raise bad_request("send multipart/form-data with an 'image' file part (PNG or TIFF, RGB) and "
                          "'pixel_size_um'", "image")
    image = decode_upload(svc, *upload_form(FIELDS, ("pixel_size_um",)))
    upload_id = image.store(svc.store)
    response = jsonify({"upload_id": upload_id, "width": image.width, "height": image.height,
                        "pixel_size_um": image.pixel_size_um, "origin": list(image.origin),
                        "downsample": image.downsample})
    response.status_code = 201
    response.headers["Location"] = f"/v1/uploads/{upload_id}"
    return response


@blueprint.delete("/uploads/<upload_id>")
def delete_upload(upload_id: str):
    """204; 409 while a queued or running job reads it; label sets on it are then skipped by ``"all"``."""
    from hubseg_server.services import services

    store = services().store
    if not ID_PATTERN.match(upload_id) or store.get_upload(upload_id) is None:
        raise not_found(f"no upload with id {upload_id[:64]!r}; uploads are named by the upload_id of POST "
                        "/v1/uploads or of a detection job's upload form")
    busy = store.jobs_using_upload(upload_id)
    if busy:
        raise conflict(f"upload {upload_id} is used by job {busy[0]}, which is not finished; cancel it first "
                       f"(DELETE /v1/jobs/{busy[0]}) or wait")
    store.delete_upload(upload_id)
    return Response(status=204)
