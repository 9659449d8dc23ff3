"""POST /v1/batches, GET /v1/batches/{id}, GET /v1/batches/{id}/slides/{index}/result.

A batch is one job (kind ``batch``) over many slides under the slides roots, or a QuPath project's
images; GET /v1/batches/{id} lists every slide with its status and counts. Cancel with DELETE /v1/jobs/{id}.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from hubseg_server.errors import bad_request, conflict, invalid, not_found
from hubseg_server.security import require_regular_file, resolve_slide_path
from hubseg_server.slides import pixel_size
from hubseg_server.validation import ID_PATTERN, check_object, json_body, region

blueprint = Blueprint("batches", __name__, url_prefix="/v1")

MAX_BATCH_IMAGES = 10_000
FIELDS = ("images", "project", "model", "options", "adapt")
ADAPT_FIELDS = ("slides", "tiles_per_slide", "max_teacher_tiles", "cohort", "epochs")
ROW_FIELDS = ("status", "error", "glomeruli", "uncertain", "glomerular_area_um2", "tissue_area_mm2", "glomeruli_per_mm2",
              "seconds", "device", "sha256_first_mib", "size_bytes")


def _images(value, roots) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise bad_request("'images' must be a non-empty array of {\"path\": ...} objects", "images")
    if len(value) > MAX_BATCH_IMAGES:
        raise invalid(f"'images' lists {len(value)} slides; at most {MAX_BATCH_IMAGES} per batch (split it)", "images")
    images, seen = [], set()
    for index, image in enumerate(value):
        field = f"images[{index}]"
        check_object(image, field, ("path", "pixel_size_um", "region"), ("path",))
        path = require_regular_file(resolve_slide_path(image["path"], roots, field=f"{field}.path"), f"{field}.path")
        if path in seen:
            raise invalid(f"'{field}.path' is listed twice: {image['path']}", f"{field}.path")
        seen.add(path)
        entry = {"path": str(path)}
        if "pixel_size_um" in image:
            entry["pixel_size_um"] = pixel_size(image["pixel_size_um"], f"{field}.pixel_size_um")
        if "region" in image:
            entry["region"] = list(region(image["region"], f"{field}.region"))
        images.append(entry)
    return images


def _project(value, roots) -> str:
    check_object(value, "project", ("path",), ("path",))
    path = resolve_slide_path(value["path"], roots, field="project.path")
    if path.is_dir():
        path = path / "project.qpproj"
    if not path.is_file() or path.suffix != ".qpproj":
        raise invalid(f"'project.path' is not a QuPath project (.qpproj or its folder): {value['path']}", "project.path")
    return str(path)


def _adapt(value) -> dict | None:
    """``"adapt": true | false | {slides?, tiles_per_slide?, max_teacher_tiles?, cohort?, epochs?}``."""
    from hubseg_server.validation import boolean, integer

    if not isinstance(value, dict):
        return {} if boolean(value, "adapt") else None
    check_object(value, "adapt", ADAPT_FIELDS)
    out = {}
    if "slides" in value:
        out["slides"] = integer(value["slides"], "adapt.slides", minimum=1, maximum=MAX_BATCH_IMAGES)
    if "tiles_per_slide" in value:
        out["tiles_per_slide"] = integer(value["tiles_per_slide"], "adapt.tiles_per_slide", minimum=1, maximum=10_000)
    if "max_teacher_tiles" in value:
        out["max_teacher_tiles"] = integer(value["max_teacher_tiles"], "adapt.max_teacher_tiles", minimum=1,
                                           maximum=1_000_000)
    if "epochs" in value:
        out["epochs"] = integer(value["epochs"], "adapt.epochs", minimum=1, maximum=1000)
    if "cohort" in value:
        if not isinstance(value["cohort"], str) or not 1 <= len(value["cohort"]) <= 200:
            raise invalid("'adapt.cohort' must be a name of 1 to 200 characters", "adapt.cohort")
        out["cohort"] = value["cohort"]
    return out


@blueprint.post("/batches")
def create_batch():
    from hubseg_server.request_options import parse_options, requested_model
    from hubseg_server.services import services

    svc = services()
    body = json_body(request)
    check_object(body, "", FIELDS)
    if ("images" in body) == ("project" in body):
        raise bad_request("give exactly one of 'images' (slide paths) or 'project' (a QuPath project)", "images")
    roots = svc.settings.slides_roots
    job_request = {"options": parse_options(body.get("options"))}
    if "images" in body:
        job_request["images"] = _images(body["images"], roots)
    else:
        job_request["project_path"] = _project(body["project"], roots)
    adapt = _adapt(body["adapt"]) if "adapt" in body else None
    if adapt is not None:
        job_request["adapt"] = adapt
    model = requested_model(body.get("model"), svc)
    job = svc.store.create_job("batch", job_request, model)
    svc.worker.submit(job["id"])
    response = jsonify(batch_json(job, svc))
    response.status_code = 202
    response.headers["Location"] = f"/v1/batches/{job['id']}"
    return response


def _batch_or_404(job_id: str, svc) -> dict:
    job = svc.store.get_job(job_id) if ID_PATTERN.match(job_id) else None
    if job is None or job["kind"] != "batch":
        raise not_found(f"no batch with id {job_id[:64]!r}; list batches with GET /v1/jobs?kind=batch")
    return job


def _slides(job: dict, svc) -> list[dict]:
    import json

    from hubseg.batch.summary import output_paths, read_record
    from hubseg_server.batch_jobs import batch_dir, read_items

    folder = batch_dir(svc.settings.data_dir, job["id"])
    items = read_items(folder)
    if items is None:  # not started yet: the request's images (a project is listed when the job starts)
        items = [{"path": image["path"], "stem": None} for image in json.loads(job["request"]).get("images", [])]
    waiting = "queued" if job["state"] in ("queued", "running") else "not_run"
    slides, running_marked = [], False
    for index, item in enumerate(items):
        record = read_record(folder, item["stem"]) if item["stem"] else None
        if record is None:
            status = waiting
            if job["state"] == "running" and not running_marked and item["stem"]:
                status, running_marked = "running", True  # slides run in order, one at a time
            slide = {"index": index, "path": item["path"], "status": status}
        else:
            slide = {"index": index, "path": item["path"], **{k: record.get(k) for k in ROW_FIELDS}}
        has_result = record is not None and record.get("status") == "ok" and output_paths(folder, item["stem"])[0].is_file()
        slide["result_url"] = f"/v1/batches/{job['id']}/slides/{index}/result" if has_result else None
        slides.append(slide)
    return slides


def batch_json(job: dict, svc) -> dict:
    from hubseg_server.api_jobs import job_json

    slides = _slides(job, svc)
    counts = {status: sum(1 for s in slides if s["status"] == status) for status in ("ok", "failed", "queued", "running", "not_run")}
    return {**job_json(job), "slides": slides, "counts": counts}


@blueprint.get("/batches/<job_id>")
def get_batch(job_id: str):
    from hubseg_server.services import services

    svc = services()
    return jsonify(batch_json(_batch_or_404(job_id, svc), svc))


@blueprint.get("/batches/<job_id>/slides/<int:index>/result")
def get_slide_result(job_id: str, index: int):
    from hubseg.batch.summary import output_paths, read_record
    from hubseg_server.services import services
    from hubseg_server.batch_jobs import batch_dir, read_items

    svc = services()
    job = _batch_or_404(job_id, svc)
    folder = batch_dir(svc.settings.data_dir, job["id"])
    items = read_items(folder) or []
    if not 0 <= index < len(items):
        raise not_found(f"batch {job_id} has no slide {index}; slides are numbered 0..{max(0, len(items) - 1)}")
    record = read_record(folder, items[index]["stem"])
    path = output_paths(folder, items[index]["stem"])[0]
    if record is None or record.get("status") != "ok" or not path.is_file():
        status = record.get("status") if record else "not finished"
        raise conflict(f"slide {index} of batch {job_id} is {status}, no result; see GET /v1/batches/{job_id}")
    return Response(path.read_bytes(), status=200, mimetype="application/json")
