"""POST /v1/trainings → 202: a fine-tuning job on stored label sets and/or unlabelled slides (self-training)."""

from __future__ import annotations

from flask import Blueprint, request

from hubseg_server.engine import label_set_image_problem
from hubseg_server.errors import ApiError, bad_request, invalid, not_found
from hubseg_server.validation import boolean, check_object, integer, json_body, model_name, number, object_id

blueprint = Blueprint("trainings", __name__, url_prefix="/v1")

FIELDS = ("base_model", "label_sets", "unlabelled", "params", "activate")
PARAMS = ("epochs", "learning_rate", "batch_size", "seed", "rounds", "tiles_per_slide", "max_teacher_tiles")
SELF_TRAINING_PARAMS = ("rounds", "tiles_per_slide", "max_teacher_tiles")  # only with 'unlabelled' slides
MAX_UNLABELLED = 1000


def parse_params(value) -> dict:
    if value is None:
        return {}
    check_object(value, "params", PARAMS)
    out = {}
    if "epochs" in value:
        out["epochs"] = integer(value["epochs"], "params.epochs", minimum=1, maximum=1000)
    if "learning_rate" in value:
        out["learning_rate"] = number(value["learning_rate"], "params.learning_rate", exclusive_minimum=0, maximum=1)
    if "batch_size" in value:
        out["batch_size"] = integer(value["batch_size"], "params.batch_size", minimum=1, maximum=256)
    if "seed" in value:
        out["seed"] = integer(value["seed"], "params.seed", minimum=0, maximum=2**31 - 1)
    if "rounds" in value:
        out["rounds"] = integer(value["rounds"], "params.rounds", minimum=1, maximum=5)
    if "tiles_per_slide" in value:
        out["tiles_per_slide"] = integer(value["tiles_per_slide"], "params.tiles_per_slide", minimum=1, maximum=10_000)
    if "max_teacher_tiles" in value:
        out["max_teacher_tiles"] = integer(value["max_teacher_tiles"], "params.max_teacher_tiles", minimum=1,
                                           maximum=1_000_000)
    return out


def parse_unlabelled(value, svc, base: str) -> list[dict]:
    """``[{"path", "pixel_size_um"?} | {"upload_id"}]``: slides under the slides roots (checked like detections':
    regular files, pixel size in range, the whole image within ``--max-tiles`` at the base model's scale) or
    stored uploads (POST /v1/uploads; their own pixel size applies)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_UNLABELLED:
        raise invalid(f"'unlabelled' must list 1 to {MAX_UNLABELLED} images as {{\"path\": ...}} or "
                      "{\"upload_id\": ...}", "unlabelled")
    out, seen = [], set()
    for i, item in enumerate(value):
        field = f"unlabelled[{i}]"
        if isinstance(item, dict) and "upload_id" in item:
            if "path" in item:
                raise invalid(f"'{field}' must give either 'path' or 'upload_id', not both", field)
            entry = _unlabelled_upload(item, field, svc, base)
            key = ("upload", entry["upload_id"])
        else:
            entry = _unlabelled_path(item, field, svc, base)
            key = ("path", entry["path"])
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _unlabelled_upload(item, field: str, svc, base: str) -> dict:
    from hubseg_server.slides import check_budget

    check_object(item, field, ("upload_id",), ("upload_id",))
    upload_id = object_id(item["upload_id"], f"{field}.upload_id")
    upload = svc.store.get_upload(upload_id)
    if upload is None:
        raise ApiError(404, "not_found", f"'{field}.upload_id': no upload with id {upload_id}; upload the "
                       "image first (POST /v1/uploads)", f"{field}.upload_id")
    size = (upload["width"] * upload["downsample"], upload["height"] * upload["downsample"])
    check_budget(svc, base, upload["pixel_size_um"], size, f"{field}.upload_id")
    return {"upload_id": upload_id}


def _unlabelled_path(item, field: str, svc, base: str) -> dict:
    """The same checks as a detection's image: root, regular file, pixel size, header size, tile budget."""
    from hubseg_server.security import require_regular_file, resolve_slide_path
    from hubseg_server.slides import check_budget, pixel_size, probe_slide

    check_object(item, field, ("path", "pixel_size_um"), ("path",))
    path = require_regular_file(resolve_slide_path(item["path"], svc.settings.slides_roots, f"{field}.path"),
                                f"{field}.path")
    entry = {"path": str(path)}
    if "pixel_size_um" in item:
        entry["pixel_size_um"] = pixel_size(item["pixel_size_um"], f"{field}.pixel_size_um")
    (_, _, width, height), slide_pixel_size = probe_slide(path, entry.get("pixel_size_um"),
                                                          svc.settings.max_image_pixels, field)
    budget_field = f"{field}.pixel_size_um" if "pixel_size_um" in entry else f"{field}.path"
    check_budget(svc, base, slide_pixel_size, (width, height), budget_field)
    return entry


def _check_teacher(svc, base: str) -> None:
    """Self-training splits the teacher's detections by its calibrated confidence: refuse a base model without one."""
    from hubseg.errors import InvalidInputError
    from hubseg.training.pseudolabels import PseudoLabelRules

    try:
        PseudoLabelRules().resolve(svc.registry.card(base))
    except InvalidInputError as error:
        raise invalid(f"'base_model' {base} cannot self-train on 'unlabelled' images: {error}", "base_model") from None


@blueprint.post("/trainings")
def create_training():
    from hubseg_server.api_jobs import job_created_response
    from hubseg_server.services import services

    svc = services()
    body = json_body(request)
    check_object(body, "", FIELDS)
    if "label_sets" not in body and "unlabelled" not in body:
        raise bad_request("give 'label_sets' (stored label-set ids or \"all\"), 'unlabelled' (slides to self-train on), "
                          "or both", "label_sets")
    if "base_model" in body:
        base = model_name(body["base_model"], "base_model", svc.model_names())
    else:
        base = svc.active_model()
        if base is None:
            raise invalid("no active model to fine-tune; name one in 'base_model'", "base_model")
    selection = body.get("label_sets", [])
    stored = svc.store.label_set_ids()
    if selection == [] and "unlabelled" in body:
        ids = []
    elif selection == "all":
        ids = stored
        if not ids:
            raise invalid("no label sets stored yet; POST /v1/labels first", "label_sets")
        # label sets whose image is gone are skipped (with a warning in the job) when it runs
    elif isinstance(selection, list):
        if not 1 <= len(selection) <= 10000:
            raise invalid("'label_sets' must list 1 to 10000 label-set ids, or be \"all\"", "label_sets")
        ids = []
        known = set(stored)
        for i, value in enumerate(selection):
            label_id = object_id(value, f"label_sets[{i}]")
            if label_id not in known:
                raise not_found(f"no label set with id {label_id} (label_sets[{i}]); list them with GET /v1/labels")
            problem = label_set_image_problem(svc.store.read_label_set(label_id), svc.store, svc.settings.slides_roots)
            if problem is not None:
                raise invalid(f"label set {label_id} (label_sets[{i}]) cannot be used: {problem}; remove it from "
                              f"the list or delete it (DELETE /v1/labels/{label_id})", f"label_sets[{i}]")
            if label_id not in ids:
                ids.append(label_id)
    else:
        raise invalid("'label_sets' must be an array of label-set ids or the string \"all\"", "label_sets")
    unlabelled = []
    if "unlabelled" in body:
        _check_teacher(svc, base)
        unlabelled = parse_unlabelled(body["unlabelled"], svc, base)
    params = parse_params(body.get("params"))
    for name in SELF_TRAINING_PARAMS:
        if name in params and not unlabelled:
            raise invalid(f"'params.{name}' applies to self-training: list slides in 'unlabelled'", f"params.{name}")
    activate = boolean(body["activate"], "activate") if "activate" in body else False
    job_request = {"base_model": base, "label_sets": ids, "params": params, "activate": activate,
                   "all_label_sets": selection == "all"}
    if unlabelled:
        job_request["unlabelled"] = unlabelled
    job = svc.store.create_job("training", job_request, base)
    svc.worker.submit(job["id"])
    return job_created_response(job)
