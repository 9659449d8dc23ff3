"""POST /v1/detections: JSON form (slide path) and multipart upload form (region pixels)."""

from __future__ import annotations

import logging

from flask import Blueprint, request

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.limits import MAX_REFERENCES

from hubseg_server.errors import invalid
from hubseg_server.security import require_regular_file, resolve_slide_path
from hubseg_server.slides import check_budget, pixel_size, planned_extent, probe_slide
from hubseg_server.validation import (
    area_geometry,
    check_object,
    integer,
    json_body,
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
    check_object(value, field, ("tta", "threshold", "object_type", "min_area_um2", "simplify_um", "stain_normalization",
                                "references"))
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
    if "references" in value:
        out["references"] = integer(value["references"], f"{field}.references", minimum=0, maximum=MAX_REFERENCES)
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


def _from_upload(svc):
    from hubseg_server.api_uploads import decode_upload, json_part, text_part, upload_form

    origin, downsample, size_um = upload_form(UPLOAD_FIELDS, ("origin", "downsample", "pixel_size_um"))
    if "region" in request.form and "geometry" in request.form:
        raise invalid("give either 'region' or 'geometry', not both", "geometry")
    options = parse_options(json_part("options")) if "options" in request.form else {}
    model = _model(text_part("model") if "model" in request.form else None, svc)
    image = decode_upload(svc, origin, downsample, size_um)
    bounds = image.bounds
    job_request = {"options": options}
    reg = None
    if "region" in request.form:
        reg = region(json_part("region"))
        region_inside(reg, bounds, "region")
        job_request["region"] = list(reg)
    if "geometry" in request.form:
        job_request["geometry"] = _geometry_in(json_part("geometry"), bounds, "geometry", svc.settings.max_vertices)
    check_budget(svc, model, size_um, planned_extent(bounds, reg, job_request.get("geometry")),
                 _budget_field(request.form, True))
    upload_id = image.store(svc.store)
    job_request["upload_id"] = upload_id
    return job_request, model, upload_id
