"""Helpers for the server tests: synthetic slides, the real server in a subprocess, OpenAPI validation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = REPO_ROOT / "server" / "hubseg_server" / "openapi.json"
BACKGROUND = (232, 182, 204)  # pink "tissue": saturated, light (threshold model: background)
NUCLEUS = (84, 40, 112)  # dark purple disks (threshold model: foreground)


def slide_image(width: int, height: int, disks) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, r in disks:
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = NUCLEUS
    return image


def write_slide(path: Path, image: np.ndarray, pixel_size_um: float | None, levels: int = 2) -> Path:
    """Tiled pyramidal TIFF (SubIFDs) with resolution tags in pixels per centimetre (or none)."""
    import tifffile

    options = dict(tile=(256, 256), photometric="rgb", compression="zlib")
    resolution = {}
    if pixel_size_um is not None:
        resolution = dict(resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=levels - 1, **resolution, **options)
        level = image
        for _ in range(levels - 1):
            level = level[::2, ::2]
            tif.write(np.ascontiguousarray(level), subfiletype=1, **options)
    return path


# --- OpenAPI validation ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def openapi() -> dict:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


def response_schema(method: str, template: str, status: int, content_type: str = "application/json") -> dict | None:
    operation = openapi()["paths"][template][method.lower()]
    responses = operation["responses"]
    spec = responses.get(str(status)) or responses.get("default")
    assert spec is not None, f"{method} {template}: status {status} is not documented"
    if "$ref" in spec:
        spec = openapi()["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    content = spec.get("content")
    if not content:
        return None
    return content.get(content_type) or next(iter(content.values()))


def validate(response: requests.Response | object, method: str, template: str) -> object:
    """Assert that the response's status is documented and its JSON body matches the schema; returns the body."""
    import jsonschema

    status = response.status_code
    media = response_schema(method, template, status)
    if media is None:
        assert not _body(response), f"{method} {template} {status}: body not documented"
        return None
    body = _json(response)
    schema = dict(media["schema"])
    schema["components"] = openapi()["components"]
    jsonschema.Draft202012Validator(schema).validate(body)
    if status >= 400:
        assert set(body) == {"error"} and body["error"]["message"], body
    return body


def _body(response) -> bytes:
    return response.content if hasattr(response, "content") else response.get_data()


def _json(response):
    if hasattr(response, "json") and callable(response.json) and not hasattr(response, "get_json"):
        return response.json()
    return response.get_json()


# --- the real server ---------------------------------------------------------------------------------
class ServerProcess:
    """``python -m hubseg_server`` on 127.0.0.1 with a free port; stdout's first line gives the URL."""

    def __init__(self, data_dir: Path, slides_roots=(), token: str | None = None, token_file: Path | None = None,
                 extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.slides_roots = [Path(r) for r in slides_roots]
        self.token = token
        self.token_file = token_file
        self.extra_args = list(extra_args)
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.log: list[str] = []

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        command = [sys.executable, "-m", "hubseg_server", "--port", "0", "--data-dir", str(self.data_dir),
                   "--torch-threads", "1", *self.extra_args]
        for root in self.slides_roots:
            command += ["--slides-root", str(root)]
        if self.token_file:
            command += ["--token-file", str(self.token_file)]
        env = dict(os.environ if self.env is None else self.env)
        env.pop("HUBSEG_TOKEN", None) if self.env is None else None
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        first = _readline_with_timeout(self.process, timeout)
        if not first.startswith("hubseg server listening on "):
            rest = self.process.stdout.read() if self.process.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"server did not start: {first!r}\n{rest}")
        self.url = first.split(" on ", 1)[1].strip()
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.log.append(line)

    def headers(self, extra=None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def wait_job(self, job_id: str, states=("succeeded", "failed", "cancelled"), timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s: {job}")
            time.sleep(0.1)

    def wait_progress(self, job_id: str, timeout: float = 60.0) -> dict:
        """Wait until a running job has finished at least one batch."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/v1/jobs/{job_id}").json()
            if job["state"] != "running" or job["progress"]["done"] > 0:
                assert job["state"] == "running", job
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} made no progress in {timeout}s")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _readline_with_timeout(process: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        process.kill()
        raise RuntimeError(f"server printed nothing within {timeout}s")
    return result[0]
