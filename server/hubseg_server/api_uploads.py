"""Uploaded pixels: POST /v1/uploads (201), DELETE /v1/uploads/{id}, and the multipart parsing the detection
upload form shares (an ``image`` file part plus ``origin`` / ``downsample`` / ``pixel_size_um`` text parts)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request

from hubseg.limits import PIXEL_SIZE_MAX_UM, PIXEL_SIZE_MIN_UM
from hubseg.pixels import PNG_MAGIC, png_header

from hubseg_server.errors import ApiError, bad_request, conflict, invalid, not_found
from hubseg_server.gate import hold
from hubseg_server.slides import pixel_size
from hubseg_server.validation import ID_PATTERN, MAX_COORDINATE, check_object, loads_strict, number

blueprint = Blueprint("uploads", __name__, url_prefix="/v1")

FIELDS = ("image", "pixel_size_um", "origin", "downsample")
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
PIL_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "1", "I;16", "I;16B", "I;16L", "I")


@dataclass(frozen=True)
class UploadedImage:
    """A checked upload (header and structure; not decoded, not stored yet). ``pixel_size_um`` is of level 0: the uploaded pixels are
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


def _form_parts() -> list[str]:
    try:
        return list(request.form.keys()) + list(request.files.keys())
    except ValueError as error:  # StrictFormRequest: a part header that is not UTF-8, a missing boundary, ...
        raise bad_request(f"the multipart form cannot be read ({error}); part names, filenames and other part "
                          "headers must be UTF-8 text") from None


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
    hold(current_app.config.get("HUBSEG_GATE"), "upload")  # until the response: the body, the check, the store
    parts = _form_parts()
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
    size_um = pixel_size(json_part("pixel_size_um"))
    downsample = _downsample(json_part("downsample"), size_um) if "downsample" in request.form else 1.0
    return origin, downsample, size_um


def _downsample(value, size_um: float) -> float:
    """The uploaded pixels (``pixel_size_um × downsample`` µm) must have a plausible pixel size themselves."""
    downsample = number(value, "downsample", exclusive_minimum=0, maximum=1e4)
    if not PIXEL_SIZE_MIN_UM <= size_um * downsample <= PIXEL_SIZE_MAX_UM:
        raise invalid(f"'downsample' {downsample:g} makes the uploaded pixels {size_um * downsample:g} µm wide "
                      f"(pixel_size_um × downsample); it must be between {PIXEL_SIZE_MIN_UM} and {PIXEL_SIZE_MAX_UM} "
                      f"µm, so downsample between {PIXEL_SIZE_MIN_UM / size_um:g} and {PIXEL_SIZE_MAX_UM / size_um:g}",
                      "downsample")
    return downsample


def decode_upload(svc, origin: tuple[float, float], downsample: float, size_um: float) -> UploadedImage:
    """The ``image`` part (PNG/TIFF, at most ``settings.max_upload_pixels``) of a checked form, checked from its
    header and structure without decoding its pixels (the job decodes them)."""
    data = request.files["image"].read()
    if not data:
        raise bad_request("form field 'image' is empty", "image")
    width, height = upload_size(data, svc.settings.max_upload_pixels)
    image = UploadedImage(data, int(width), int(height), origin, downsample, size_um)
    if not all(math.isfinite(b) and abs(b) <= MAX_COORDINATE for b in image.bounds):
        raise invalid("'origin' + image size × 'downsample' lies outside any plausible slide", "downsample")
    return image


def upload_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an uploaded PNG or TIFF from its header; 422 over ``max_pixels``, 415 if it is not a
    readable PNG/TIFF. A PNG's chunks are checked (CRC) to the end; no pixels are decoded."""
    header = png_header(data)
    if header is not None:
        width, height = header[:2]
    elif data[:4] in TIFF_MAGICS:
        width, height = _tiff_size(data)
    else:
        raise _undecodable("it is neither PNG nor TIFF")
    if width < 1 or height < 1:
        raise _undecodable(f"it has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ApiError(422, "invalid_input", f"the uploaded image has too many pixels ({width}×{height} = "
                       f"{width * height / 1e6:.1f} MP, limit {max_pixels / 1e6:g} MP); upload a smaller region or a "
                       "downsampled one (and say so in 'downsample')", "image")
    if header is not None:
        _verify_png(data)
    return width, height


def _tiff_size(data: bytes) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            width, height, samples = int(page.imagewidth), int(page.imagelength), int(page.samplesperpixel)
            kind = page.dtype.kind if page.dtype is not None else "?"
    except Exception as error:  # tifffile raises many types for damaged files
        raise _undecodable(f"its TIFF structure cannot be read: {type(error).__name__}") from None
    if samples not in (1, 2, 3, 4) or kind not in "uifb":
        raise ApiError(415, "unsupported_format", f"the uploaded TIFF has {samples} samples per pixel of type "
                       f"{kind!r}; send grey or RGB(A) pixels (8 or 16 bits, or float)", "image")
    return width, height


def _verify_png(data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = image.mode
            image.verify()  # chunk structure and CRCs to IEND, no decompression
    except Image.DecompressionBombError:
        return  # the pixel limit above is the server's rule, PIL's own is not
    except Exception as error:
        raise _undecodable(f"{type(error).__name__}: {str(error)[:100]}") from None
    if mode not in PIL_MODES:
        raise ApiError(415, "unsupported_format", f"the uploaded PNG has mode {mode}; send grey or RGB(A)", "image")


def _undecodable(why: str) -> ApiError:
    return ApiError(415, "unsupported_format", f"cannot decode the uploaded image ({why}); send PNG or TIFF (grey or "
                    "RGB, 8 or 16 bits)", "image")


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
