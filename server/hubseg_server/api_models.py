"""GET /v1/models, GET /v1/models/{name}, GET /v1/models/{name}/references/{index}, POST /v1/models/{name}/activate."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from hubseg_server.errors import not_found
from hubseg_server.validation import MODEL_NAME_PATTERN

blueprint = Blueprint("models", __name__, url_prefix="/v1")


def model_json(card, active: str | None) -> dict:
    data = card.to_dict()
    data["active"] = card.name == active
    for index, entry in enumerate(data.get("references") or [], start=1):  # where the QuPath panel fetches each
        entry["url"] = f"/v1/models/{card.name}/references/{index}"
    return data


def _known(name: str) -> str:
    from hubseg_server.services import services

    names = services().model_names()
    # names only, never paths: the registry would also accept a path to a model folder
    if not MODEL_NAME_PATTERN.match(name) or name not in names:
        raise not_found(f"unknown model {name[:100]!r}; valid names: {', '.join(names) or '(none registered)'}")
    return name


@blueprint.get("/models")
def list_models():
    from hubseg_server.services import services

    svc = services()
    active = svc.active_model()
    return jsonify({"models": [model_json(c, active) for c in svc.registry.list()], "active_model": active})


@blueprint.get("/models/<name>")
def get_model(name: str):
    from hubseg_server.services import services

    svc = services()
    card = svc.registry.card(_known(name))
    return jsonify(model_json(card, svc.active_model()))


@blueprint.get("/models/<name>/references/<int:index>")
def get_reference(name: str, index: int):
    """One reference crop of a model card (JPEG or PNG bytes; the card's ``references[index-1]``)."""
    from hubseg_server.services import services

    data, media_type = services().registry.reference_crop(_known(name), index)
    return Response(data, mimetype=media_type, headers={"Cache-Control": "max-age=3600"})


@blueprint.post("/models/<name>/activate")
def activate_model(name: str):
    from hubseg_server.services import services

    svc = services()
    card = svc.registry.activate(_known(name))
    return jsonify(model_json(card, card.name))
