"""GET /v1/health (public, never waits for the worker) and GET /v1/openapi.json (public)."""

from __future__ import annotations

from flask import Blueprint, jsonify

blueprint = Blueprint("health", __name__, url_prefix="/v1")


@blueprint.get("/health")
def health():
    from hubseg_server.services import services

    svc = services()
    return jsonify(
        {
            "status": "ok",
            "version": svc.version,
            "api_version": "v1",
            "device": svc.device.type,
            "active_model": svc.active_model(),
            "queue_length": svc.store.count_active(),
            "auth_required": bool(svc.settings.token),
        }
    )


@blueprint.get("/openapi.json")
def openapi():
    from hubseg_server.services import services

    return jsonify(services().openapi)
