"""Server logging: stderr plus a rotating file in the data directory, and one access line per request.

Format: ``2026-12-02 05:59:01,123 INFO hubseg_server.access POST /v1/detections 202 41.3 ms``. The access
line holds method, path (never the query string or any header, so never the token), status and
duration. Polling (``GET /v1/health``, ``GET /v1/jobs/{id}``) is logged at DEBUG so an INFO log stays
readable while QuPath polls a job.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from pathlib import Path

from flask import Flask, g, request

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_FILE = Path("logs") / "server.log"
LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 5  # server.log + 5 rotated files: at most 30 MiB
LEVELS = ("debug", "info", "warning", "error")
_QUIET_ENDPOINTS = {"health.health", "jobs.get_job"}

access_log = logging.getLogger("hubseg_server.access")


def setup_logging(data_dir: Path, level: str = "info") -> Path:
    """Log ``hubseg_server`` (and the library's warnings) to stderr and ``<data_dir>/logs/server.log``."""
    path = Path(data_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(LOG_FORMAT)
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
    )
    stream_handler = logging.StreamHandler()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hubseg", False):
            root.removeHandler(handler)
            handler.close()
    for handler in (file_handler, stream_handler):
        handler.setFormatter(formatter)
        handler._hubseg = True
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" noise under load
    return path


def install_access_log(app: Flask, on_large_request=None, large_bytes: int = 1024 * 1024) -> None:
    """One log line per request; ``on_large_request()`` runs after requests whose body exceeded ``large_bytes``."""

    @app.before_request
    def _start_timer():
        g.hubseg_started = time.perf_counter()

    @app.after_request
    def _log(response):
        started = g.get("hubseg_started")
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        level = logging.DEBUG if request.endpoint in _QUIET_ENDPOINTS and response.status_code < 400 else logging.INFO
        path = repr(request.path[:300])[1:-1]  # escapes newlines and control characters: one request, one line
        access_log.log(level, "%s %s %d %.1f ms", request.method, path, response.status_code, elapsed_ms)
        return response

    @app.teardown_request
    def _release(_error=None):
        if on_large_request is not None and (request.content_length or 0) > large_bytes:
            on_large_request()
