"""The Flask app factory. All state hangs off ``app.extensions["hubseg"]`` (no module-level mutable state)."""

from __future__ import annotations

import json
import logging
from importlib import resources

from flask import Flask, request

from hubseg.models.devices import resolve_device

from hubseg_server.errors import install_error_handlers
from hubseg_server.gate import RequestGate, release_held
from hubseg_server.housekeeping import Housekeeper, release_memory
from hubseg_server.logs import install_access_log
from hubseg_server.security import PUBLIC_ENDPOINTS, check_bearer
from hubseg_server.services import Services
from hubseg_server.settings import Settings
from hubseg_server.store import Store
from hubseg_server.validation import JsonLimits, StrictFormRequest
from hubseg_server.worker import Worker

log = logging.getLogger("hubseg_server")


def load_openapi() -> dict:
    return json.loads(resources.files("hubseg_server").joinpath("openapi.json").read_text(encoding="utf-8"))


def create_app(settings: Settings) -> Flask:
    """Build the app: store, model registry, worker thread and housekeeping (started unless
    ``settings.start_worker`` is false)."""
    from hubseg.models.registry import ModelRegistry

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.torch_threads:
        import torch

        torch.set_num_threads(int(settings.torch_threads))
    device = resolve_device(settings.device)
    store = Store(settings.data_dir)
    registry = ModelRegistry(settings.data_dir, shipped_dir=settings.shipped_models_dir)
    worker = Worker(store, registry, device, settings.slides_roots, max_tiles=settings.max_tiles,
                    max_image_pixels=settings.max_image_pixels)
    housekeeper = Housekeeper(store, settings.keep_results_days)

    app = Flask("hubseg_server")
    app.request_class = StrictFormRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    # text parts of the upload form (geometry JSON) obey the JSON limit
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_json_bytes
    gate = RequestGate(settings.max_heavy_requests, settings.max_heavy_waiting)
    app.config["HUBSEG_GATE"] = gate  # large JSON bodies and uploads share it
    app.config["HUBSEG_JSON_LIMITS"] = JsonLimits(settings.max_json_bytes, settings.max_json_values, gate)
    app.teardown_request(release_held)
    app.json.sort_keys = False
    app.extensions["hubseg"] = Services(
        settings=settings, store=store, registry=registry, worker=worker, device=device, openapi=load_openapi(),
        housekeeper=housekeeper,
    )
    install_error_handlers(app)
    install_access_log(app, on_large_request=release_memory)

    @app.before_request
    def _authenticate():
        token = app.extensions["hubseg"].settings.token
        if token and request.endpoint not in PUBLIC_ENDPOINTS:
            check_bearer(request.headers.get("Authorization"), token)

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    from hubseg_server import (api_batches, api_detections, api_health, api_jobs, api_labels, api_models, api_trainings,
                               api_uploads)

    for module in (api_health, api_models, api_detections, api_jobs, api_labels, api_uploads, api_trainings,
                   api_batches):
        app.register_blueprint(module.blueprint)

    if settings.start_worker:
        app.extensions["hubseg"].start_background()
    return app
