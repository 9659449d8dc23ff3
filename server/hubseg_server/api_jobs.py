"""GET /v1/jobs, GET/DELETE /v1/jobs/{id}, GET/DELETE /v1/jobs/{id}/result."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from hubseg_server.errors import bad_request, conflict, not_found
from hubseg_server.validation import ID_PATTERN

blueprint = Blueprint("jobs", __name__, url_prefix="/v1")

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
KINDS = ("detection", "training", "batch")


def job_json(job: dict) -> dict:
    from hubseg.training.adapt_report import parse_progress

    has_result = bool(job.get("result_file"))
    error = None
    if job.get("error_code") or job.get("error_message"):
        error = {"code": job.get("error_code") or "failed", "message": job.get("error_message") or ""}
    return {
        "id": job["id"],
        "kind": job["kind"],
        "state": job["state"],
        "progress": {
            "done": job["progress_done"],
            "total": job["progress_total"],
            "message": job["progress_message"],
            # self-training (a training job with unlabelled slides, a batch that adapts first): the phase, for an ETA
            "phase": parse_progress(job["progress_message"]) if job["kind"] != "detection" else None,
        },
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "error": error,
        "cancel_requested": bool(job["cancel_requested"]),
        "model": job["model"],
        "new_model": job["new_model"],
        "result_available": has_result,
        "result_url": f"/v1/jobs/{job['id']}/result" if has_result else None,
        "upload_id": job["upload_id"],
        "warnings": json.loads(job.get("warnings") or "[]"),
        "adaptation": json.loads(job["summary"]) if job.get("summary") else None,
    }


def job_created_response(job: dict):
    response = jsonify(job_json(job))
    response.status_code = 202
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return response


def _job_or_404(job_id: str) -> dict:
    from hubseg_server.services import services

    job = services().store.get_job(job_id) if ID_PATTERN.match(job_id) else None
    if job is None:
        raise not_found(f"no job with id {job_id[:64]!r}; list jobs with GET /v1/jobs")
    return job


@blueprint.get("/jobs")
def list_jobs():
    from hubseg_server.services import services

    args = request.args
    unknown = sorted(set(args) - {"state", "kind", "limit"})
    if unknown:
        raise bad_request(f"unknown query parameter {unknown[0]!r}; valid: state, kind, limit", unknown[0])
    state = args.get("state")
    if state is not None and state not in STATES:
        raise bad_request(f"'state' must be one of {', '.join(STATES)}", "state")
    kind = args.get("kind")
    if kind is not None and kind not in KINDS:
        raise bad_request(f"'kind' must be one of {', '.join(KINDS)}", "kind")
    limit_text = args.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise bad_request("'limit' must be an integer between 1 and 1000", "limit")
    jobs = services().store.list_jobs(state=state, kind=kind, limit=int(limit_text))
    return jsonify({"jobs": [job_json(j) for j in jobs]})


@blueprint.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(job_json(_job_or_404(job_id)))


@blueprint.delete("/jobs/<job_id>")
def cancel_job(job_id: str):
    from hubseg_server.services import services

    svc = services()
    _job_or_404(job_id)
    svc.worker.cancel(job_id)
    return jsonify(job_json(svc.store.get_job(job_id)))


@blueprint.get("/jobs/<job_id>/result")
def get_result(job_id: str):
    from hubseg_server.services import services

    svc = services()
    job = _job_or_404(job_id)
    if job["kind"] == "batch":
        raise conflict(f"job {job_id} is a batch: its per-slide results are listed by GET /v1/batches/{job_id}")
    if job["kind"] != "detection":
        raise conflict(
            f"job {job_id} is a training job and has no result document; its new model is "
            f"{job['new_model'] or '(not registered yet)'}: GET /v1/models/<new_model>"
        )
    if job["state"] in ("queued", "running"):
        raise conflict(f"job {job_id} is {job['state']}; poll GET /v1/jobs/{job_id} until it has succeeded")
    if job["state"] == "cancelled":
        raise conflict(f"job {job_id} was cancelled and has no result; submit the detection again")
    if job["state"] == "failed":
        reason = f" ({job['error_code']}: {job['error_message']})" if job.get("error_message") else ""
        raise conflict(f"job {job_id} failed{reason} and has no result; fix the cause and submit the detection again")
    path = svc.store.result_path(job)
    if path is None:
        raise not_found(f"the result of job {job_id} was deleted; run the detection again")
    return Response(path.read_bytes(), status=200, mimetype="application/json")


@blueprint.delete("/jobs/<job_id>/result")
def delete_result(job_id: str):
    from hubseg_server.services import services

    svc = services()
    job = _job_or_404(job_id)
    if job["state"] in ("queued", "running"):
        raise conflict(f"job {job_id} is still {job['state']}; cancel it first (DELETE /v1/jobs/{job_id})")
    svc.store.delete_result(job_id)
    return Response(status=204)
