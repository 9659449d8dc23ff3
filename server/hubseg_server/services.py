"""The per-app services (settings, store, registry, worker) the routes reach through :func:`services`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from flask import current_app

from hubseg import __version__

from hubseg_server.housekeeping import Housekeeper
from hubseg_server.settings import Settings
from hubseg_server.store import Store
from hubseg_server.worker import Worker


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: object  # hubseg.models.registry.ModelRegistry
    worker: Worker
    device: object  # torch.device
    openapi: dict
    housekeeper: Housekeeper | None = None
    version: str = __version__
    _active_cache: tuple = field(default=(None, None), repr=False)

    def start_background(self) -> None:
        """Start-up housekeeping, then the worker (which re-queues, or fails, jobs left queued)."""
        if self.housekeeper is not None:
            self.housekeeper.start()
        self.worker.start()

    def model_names(self) -> list[str]:
        return self.registry.names()

    def _model_signature(self) -> tuple:
        """Changes whenever a model is registered or activated (folder / pointer mtimes): a few stat calls."""
        signature = []
        for path in (self.registry.data_dir / "active_model", self.registry.user_dir, self.registry.shipped_dir):
            try:
                signature.append(os.stat(path).st_mtime_ns)
            except OSError:
                signature.append(None)
        return tuple(signature)

    def active_model(self) -> str | None:
        """The active model's name (``None`` if it is not registered), cached so health never scans folders."""
        signature = self._model_signature()
        cached_signature, cached = self._active_cache
        if cached_signature == signature:
            return cached
        try:
            name = self.registry.active_name()
            name = name if name in self.registry.names() else None
        except Exception:  # a broken pointer file must not break health
            name = None
        self._active_cache = (signature, name)
        return name


def services() -> Services:
    return current_app.extensions["hubseg"]
