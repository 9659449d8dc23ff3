"""POST /v1/labels (201), GET /v1/labels, GET/DELETE /v1/labels/{id}."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from hubseg.errors import HubsegError
from hubseg.labels import validate_label_set as library_validate

from hubseg_server.errors import bad_request, from_hubseg, invalid, not_found
from hubseg_server.security import require_regular_file, resolve_slide_path
from hubseg_server.slides import pixel_size
from hubseg_server.validation import (
    ID_PATTERN,
    area_geometry,
    check_object,
    feature_collection,
    json_body,
    object_id,
    string,
)

blueprint = Blueprint("labels", __name__, url_prefix="/v1")

LABELSET_FORMAT = "hubseg-labelset/1"
FIELDS = ("format", "image", "pixel_size_um", "regions", "features", "model", "source", "created")
SOURCES = ("qupath", "project", "api")


def validate_label_set(body: dict, svc) -> dict:
    """Strict check of a ``hubseg-labelset/1`` document; returns the document to store.

    ``image.path`` is stored resolved (realpath) after the slides-root check and must be a regular file
    (not a folder, FIFO or device), so training later opens exactly the file that was checked.
    """
    check_object(body, "", FIELDS, ("format", "image", "pixel_size_um", "regions", "features"))
    if body["format"] != LABELSET_FORMAT:
        raise invalid(f"'format' must be {LABELSET_FORMAT!r}", "format")
    image = body["image"]
    if isinstance(image, dict) and "upload_id" in image:
        check_object(image, "image", ("upload_id",), ("upload_id",))
        upload_id = object_id(image["upload_id"], "image.upload_id")
        if svc.store.get_upload(upload_id) is None:
            raise not_found(f"no upload with id {upload_id}; use the upload_id of POST /v1/uploads or of a detection job's upload form")
        stored_image = {"upload_id": upload_id}
    else:
        check_object(image, "image", ("path",), ("path",))
        path = require_regular_file(resolve_slide_path(image["path"], svc.settings.slides_roots))
        stored_image = {"path": str(path)}
    document = dict(body)
    document["image"] = stored_image
    pixel_size(body["pixel_size_um"])
    counter = [0]
    regions = body["regions"]
    if not isinstance(regions, list):
        raise bad_request("'regions' must be an array of GeoJSON Polygon/MultiPolygon (level-0 px)", "regions")
    for i, geometry in enumerate(regions):
        area_geometry(geometry, f"regions[{i}]", svc.settings.max_vertices, counter)
    feature_collection(body["features"], "features", svc.settings.max_vertices, counter)
    if not regions:
        raise invalid(
            "'regions' is empty: send at least one reviewed region (the area where the labels are exhaustive)", "regions"
        )
    if "model" in body:
        string(body["model"], "model", max_length=200)
    if "source" in body:
        string(body["source"], "source", choices=SOURCES)
    if "created" in body:
        string(body["created"], "created", max_length=100)
    try:  # then the library's own rules (class names, labels inside regions, ...)
        library_validate(document)
    except HubsegError as error:
        raise from_hubseg(error) from None
    return document


@blueprint.post("/labels")
def create_label_set():
    from hubseg_server.services import services

    svc = services()
    document = validate_label_set(json_body(request), svc)
    summary = svc.store.add_label_set(document)
    response = jsonify(summary)
    response.status_code = 201
    response.headers["Location"] = f"/v1/labels/{summary['id']}"
    return response


@blueprint.get("/labels")
def list_label_sets():
    from hubseg_server.services import services

    return jsonify({"label_sets": services().store.list_label_summaries()})


@blueprint.get("/labels/<label_id>")
def get_label_set(label_id: str):
    from hubseg_server.services import services

    document = services().store.read_label_set(label_id) if ID_PATTERN.match(label_id) else None
    if document is None:
        raise not_found(f"no label set with id {label_id[:64]!r}; list them with GET /v1/labels")
    return jsonify(document)


@blueprint.delete("/labels/<label_id>")
def delete_label_set(label_id: str):
    """204; 404 if there is no such label set. Training jobs already queued with it skip or fail it."""
    from hubseg_server.services import services

    if not (ID_PATTERN.match(label_id) and services().store.delete_label_set(label_id)):
        raise not_found(f"no label set with id {label_id[:64]!r}; list them with GET /v1/labels")
    return Response(status=204)
