"""POST /v1/detections: JSON form (slide path) and multipart upload form (region pixels)."""

from __future__ import annotations

import logging
import math

from flask import Blueprint, request

from hubseg.errors import HubsegError
from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES

from hubseg_server.errors import bad_request, from_hubseg, invalid
from hubseg_server.security import require_regular_file, resolve_slide_path
from hubseg_server.slides import check_budget, pixel_size, planned_extent, probe_slide
from hubseg_server.validation import (
    MAX_COORDINATE,
    area_geometry,
    check_object,
    json_body,
    loads_strict,
    model_name,
    number,
    region,
    region_inside,
    string,
)

blueprint = Blueprint("detections", __name__, url_prefix="/v1")
log = logging.getLogger("hubseg_server")

JSON_FIELDS = ("image", "region", "geometry", "pixel_size_um", "model", "options")
UPLOAD_FIELDS = ("image", "origin", "downsample", "pixel_size_um", "model", "options", "region", "geometry")
TTA_CHOICES = TTA_MODES  # the one list (CLI, library, OpenAPI enum: tests/server/test_openapi.py checks it)
OBJECT_TYPES = ("annotation", "detection")


def parse_options(value, field: str = "options") -> dict:
    """Validated detection options (names as in the API; engine maps them to DetectionOptions)."""
    if value is None:
        return {}
    check_object(value, field, ("tta", "threshold", "object_type", "min_area_um2", "simplify_um", "stain_normalization"))
    out = {}
    if "tta" in value:
        out["tta"] = string(value["tta"], f"{field}.tta", choices=TTA_CHOICES)
    if "threshold" in value:
        out["threshold"] = number(value["threshold"], f"{field}.threshold", exclusive_minimum=0, exclusive_maximum=1)
    if "object_type" in value:
        out["object_type"] = string(value["object_type"], f"{field}.object_type", choices=OBJECT_TYPES)
    if "min_area_um2" in value:
        out["min_area_um2"] = number(value["min_area_um2"], f"{field}.min_area_um2", minimum=0, maximum=1e9)
    if "simplify_um" in value:
        out["simplify_um"] = number(value["simplify_um"], f"{field}.simplify_um", minimum=0, maximum=1e4)
    if "stain_normalization" in value:
        out["stain_normalization"] = string(
            value["stain_normalization"], f"{field}.stain_normalization", choices=STAIN_NORMALIZATION_CHOICES
        )
    return out


def _model(value, svc) -> str:
    if value is None:
        active = svc.active_model()
        if active is None:
            raise invalid(
                "no model named and no active model registered; name one in 'model' "
                f"(valid: {', '.join(svc.model_names()) or 'none'}) or activate one with POST /v1/models/{{name}}/activate",
                "model",
            )
        return active
    return model_name(value, "model", svc.model_names())


def _geometry_in(value, bounds, field: str, max_vertices: int) -> dict:
    """Validate a GeoJSON area geometry that must overlap ``bounds`` (x0, y0, x1, y1); returns it unchanged."""
    from shapely.geometry import box

    geometry = area_geometry(value, field, max_vertices)
    if not geometry.intersects(box(*bounds)) or geometry.intersection(box(*bounds)).area <= 0:
        raise invalid(
            f"'{field}' does not overlap the image (x {bounds[0]:g}..{bounds[2]:g}, y {bounds[1]:g}..{bounds[3]:g}, "
            "level-0 px)",
            field,
        )
    return {"type": value["type"], "coordinates": value["coordinates"]}


@blueprint.post("/detections")
def create_detection():
    from hubseg_server.api_jobs import job_created_response
    from hubseg_server.app import services

    svc = services()
    if (request.mimetype or "").lower() == "multipart/form-data":
        job_request, model, upload_id = _from_upload(svc)
    else:
        job_request, model = _from_json(svc)
        upload_id = None
    job = svc.store.create_job("detection", job_request, model, upload_id=upload_id)
    svc.worker.submit(job["id"])
    return job_created_response(job)


def _budget_field(body_or_form, pixel_size_given: bool) -> str:
    """The field a too-large job is blamed on: the pixel size if sent (the usual unit mix-up), else the area."""
    if pixel_size_given:
        return "pixel_size_um"
    for name in ("region", "geometry"):
        if name in body_or_form:
            return name
    return "image.path"


def _from_json(svc):
    body = json_body(request)
    check_object(body, "", JSON_FIELDS, ("image",))
    image = check_object(body["image"], "image", ("path",), ("path",))
    path = require_regular_file(resolve_slide_path(image["path"], svc.settings.slides_roots))
    size_um = pixel_size(body["pixel_size_um"]) if "pixel_size_um" in body else None
    if "region" in body and "geometry" in body:
        raise invalid("give either 'region' or 'geometry', not both", "geometry")
    reg = region(body["region"]) if "region" in body else None
    options = parse_options(body.get("options"))
    model = _model(body.get("model"), svc)
    geometry = None
    (x0, y0, w, h), slide_pixel_size = probe_slide(path, size_um, svc.settings.max_image_pixels)
    bounds = (x0, y0, x0 + w, y0 + h)
    if reg is not None:
        region_inside(reg, bounds, "region")
    if "geometry" in body:
        geometry = _geometry_in(body["geometry"], bounds, "geometry", svc.settings.max_vertices)
    check_budget(svc, model, slide_pixel_size, planned_extent(bounds, reg, geometry), _budget_field(body, size_um is not None))
    job_request = {"image_path": str(path), "options": options}
    if size_um is not None:
        job_request["pixel_size_um"] = size_um
    if reg is not None:
        job_request["region"] = list(reg)
    if geometry is not None:
        job_request["geometry"] = geometry
    return job_request, model


def _text_part(name: str) -> str:
    values = request.form.getlist(name)
    if len(values) != 1:
        raise bad_request(f"form field '{name}' must be sent exactly once", name)
    return values[0]


def _json_part(name: str):
    return loads_strict(_text_part(name), name)


def _origin(value) -> tuple[float, float]:
    if isinstance(value, dict):
        check_object(value, "origin", ("x", "y"), ("x", "y"))
        value = [value["x"], value["y"]]
    if not isinstance(value, list) or len(value) != 2:
        raise bad_request("'origin' must be JSON [x, y] or {\"x\": .., \"y\": ..} (level-0 px)", "origin")
    x = number(value[0], "origin.x", minimum=0, maximum=MAX_COORDINATE)
    y = number(value[1], "origin.y", minimum=0, maximum=MAX_COORDINATE)
    return (x, y)


def _from_upload(svc):
    from hubseg_server.engine import load_upload_rgb

    parts = list(request.form.keys()) + list(request.files.keys())
    unknown = sorted(set(parts) - set(UPLOAD_FIELDS))
    if unknown:
        raise bad_request(
            f"unknown form field {unknown[0]!r}; valid fields: {', '.join(UPLOAD_FIELDS)}", unknown[0]
        )
    files = request.files.getlist("image")
    if len(files) != 1 or "image" in request.form:
        raise bad_request("form field 'image' must be exactly one file part (PNG or TIFF, RGB)", "image")
    for name in ("origin", "downsample", "pixel_size_um"):
        if name not in request.form:
            raise bad_request(f"missing required form field '{name}'", name)
    origin = _origin(_json_part("origin"))
    downsample = number(_json_part("downsample"), "downsample", exclusive_minimum=0, maximum=1e4)
    size_um = pixel_size(_json_part("pixel_size_um"))
    if "region" in request.form and "geometry" in request.form:
        raise invalid("give either 'region' or 'geometry', not both", "geometry")
    options = parse_options(_json_part("options")) if "options" in request.form else {}
    model = _model(_text_part("model") if "model" in request.form else None, svc)
    data = files[0].read()
    if not data:
        raise bad_request("form field 'image' is empty", "image")
    try:
        rgb = load_upload_rgb(data, svc.settings.max_upload_pixels)
    except HubsegError as error:
        raise from_hubseg(error, "image") from None
    height, width = rgb.shape[:2]
    bounds = (origin[0], origin[1], origin[0] + width * downsample, origin[1] + height * downsample)
    if not all(math.isfinite(b) and abs(b) <= MAX_COORDINATE for b in bounds):
        raise invalid("'origin' + image size × 'downsample' lies outside any plausible slide", "downsample")
    job_request = {"options": options}
    reg = None
    if "region" in request.form:
        reg = region(_json_part("region"))
        region_inside(reg, bounds, "region")
        job_request["region"] = list(reg)
    if "geometry" in request.form:
        job_request["geometry"] = _geometry_in(_json_part("geometry"), bounds, "geometry", svc.settings.max_vertices)
    check_budget(svc, model, size_um, planned_extent(bounds, reg, job_request.get("geometry")),
                 _budget_field(request.form, True))
    suffix = ".png" if data[:8] == b"\x89PNG\r\n\x1a\n" else ".tif"
    upload_id = svc.store.add_upload(data, suffix, width, height, origin, downsample, size_um)
    job_request["upload_id"] = upload_id
    return job_request, model, upload_id
