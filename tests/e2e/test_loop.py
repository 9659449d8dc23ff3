"""The whole human-in-the-loop cycle through the real server over HTTP, as QuPath would drive it.

detect → review (accept some, reject one, edit one) → POST /v1/labels → POST /v1/trainings → a new model
version is registered → detect again with it. Every response is checked against the OpenAPI document
(server/hubseg_server/openapi.json). The server runs as `hubseg serve --port 0` in a subprocess on
127.0.0.1 with a temporary data directory; the model is a tiny U-Net pre-trained for a few seconds on
a synthetic slide so that its first detections are real objects to review.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box, shape

requests = pytest.importorskip("requests")
jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((REPO / "server" / "hubseg_server" / "openapi.json").read_text(encoding="utf-8"))
PIXEL_SIZE_UM = 0.5
TISSUE = (232, 182, 204)  # pale PAS-like pink
STAIN = (84, 40, 112)  # dark purple: what the tiny model learns to call glomerulus
GLOMERULI = [(100, 100, 42), (300, 110, 40), (440, 280, 45), (150, 290, 38)]  # cx, cy, r in level-0 px
ARTEFACT = (245, 222, 355, 268)  # a dark fold (55 x 23 µm): detected, to be rejected


def synthetic(width: int, height: int, disks, artefact=None) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = TISSUE
    mask = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, r in disks:
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        rgb[inside] = STAIN
        mask[inside] = 255
    if artefact:
        x0, y0, x1, y1 = artefact
        rgb[y0:y1, x0:x1] = STAIN
    return rgb, mask


def write_pyramid(path: Path, rgb: np.ndarray, pixel_size_um: float) -> Path:
    import tifffile

    options = dict(tile=(256, 256), photometric="rgb", compression="zlib")
    per_cm = 1e4 / pixel_size_um
    with tifffile.TiffWriter(path) as tif:
        tif.write(rgb, subifds=1, resolution=(per_cm, per_cm), resolutionunit="CENTIMETER", **options)
        tif.write(np.ascontiguousarray(rgb[::2, ::2]), subfiletype=1, **options)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Slides root with the slide to review, and a data dir whose active model already finds stained disks."""
    import torch
    from PIL import Image

    from hubseg.models.registry import ModelRegistry
    from hubseg.models.testing import make_tiny_model
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import TrainConfig, train

    root = tmp_path_factory.mktemp("e2e")
    slides = root / "slides"
    slides.mkdir()
    write_pyramid(slides / "slide.tif", synthetic(512, 384, GLOMERULI, ARTEFACT)[0], PIXEL_SIZE_UM)

    # v0: the tiny U-Net taught for a few seconds on a different synthetic image (in-process, 1 thread)
    folder = root / "pretrain"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rgb, mask = synthetic(512, 384, [(90, 90, 40), (260, 120, 46), (420, 100, 38), (150, 280, 44), (380, 290, 42)])
    Image.fromarray(rgb).save(folder / "images" / "pretrain.png")
    Image.fromarray(mask).save(folder / "masks" / "pretrain.png")
    data = root / "data"
    registry = ModelRegistry(data)
    make_tiny_model(registry, name="e2e-tiny-v1", pixel_size_um=1.0, tile_size=64, seed=1)
    threads = torch.get_num_threads()
    try:
        v0 = train(
            TrainConfig(base_model="e2e-tiny-v1", epochs=15, batch_size=4, train_tile_size=64, val_fraction=0,
                        lr=3e-3, random_tiles=1.0, device="cpu", num_threads=1, seed=0),
            [ImageFolderSource(folder, PIXEL_SIZE_UM)],
            registry,
        )
    finally:
        torch.set_num_threads(threads)
    registry.activate(v0.name)
    return {"slides": slides, "data": data, "slide": slides / "slide.tif", "v0": v0.name}


class Server:
    """`hubseg serve` on 127.0.0.1, a free port; the first stdout line gives the URL."""

    def __init__(self, data: Path, slides: Path):
        command = [sys.executable, "-m", "hubseg", "serve", "--host", "127.0.0.1", "--port", "0",
                   "--data-dir", str(data), "--slides-root", str(slides), "--device", "cpu", "--torch-threads", "1"]
        env = {k: v for k, v in os.environ.items() if k not in ("HUBSEG_TOKEN", "HUBSEG_DATA_DIR")}
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        cwd=REPO, env=env)
        self.log: list[str] = []
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        line = first[0] if first else ""
        if not line.startswith("hubseg server listening on "):
            self.stop()
            raise AssertionError(f"server did not start: {line!r} {self.process.stdout.read() if self.process.stdout else ''}")
        self.url = line.split(" on ", 1)[1].strip().rstrip("/")
        threading.Thread(target=lambda: self.log.extend(self.process.stdout), daemon=True).start()

    def call(self, method: str, template: str, expect: int, *, path_args=None, **kwargs):
        """One request; asserts the status and validates the JSON body against the OpenAPI response schema."""
        path = template.format(**(path_args or {}))
        response = requests.request(method, self.url + path, timeout=60, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        body = response.json() if response.content else None
        check_schema(method, template, expect, body)
        return response, body

    def wait(self, job_id: str, timeout: float = 150) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            _, job = self.call("GET", "/v1/jobs/{id}", 200, path_args={"id": job_id})
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['state']} after {timeout}s"
            time.sleep(0.2)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def check_schema(method: str, template: str, status: int, body) -> None:
    operation = OPENAPI["paths"][template][method.lower()]
    spec = operation["responses"].get(str(status))
    assert spec is not None, f"{method} {template} {status} is not documented in openapi.json"
    if "$ref" in spec:
        spec = OPENAPI["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    content = spec.get("content") or {}
    if "application/json" not in content:
        return
    schema = {**content["application/json"]["schema"], "components": OPENAPI["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.fixture(scope="module")
def server(workspace):
    proc = Server(workspace["data"], workspace["slides"])
    try:
        yield proc
    finally:
        proc.stop()


def detect(server: Server, slide: Path, model: str | None = None) -> tuple[dict, dict]:
    body = {"image": {"path": str(slide)}, "options": {"tta": "none"}}
    if model:
        body["model"] = model
    response, job = server.call("POST", "/v1/detections", 202, json=body)
    assert response.headers["Location"].endswith(job["id"])
    job = server.wait(job["id"])
    assert job["state"] == "succeeded", job
    _, result = server.call("GET", "/v1/jobs/{id}/result", 200, path_args={"id": job["id"]})
    return job, result


def review_like_a_pathologist(result: dict) -> tuple[list, dict]:
    """Simulated reviewer with the ground truth: accept objects on a glomerulus, reject the rest, replace
    one accepted object by the true shape (an edit), and draw any glomerulus the model missed."""
    from hubseg.project import review
    from hubseg.project.store import ProjectObject

    truth = [Point(cx, cy).buffer(r, quad_segs=16) for cx, cy, r in GLOMERULI]
    objects, decisions = [], {"accepted": 0, "rejected": 0, "corrected": 0, "drawn": 0}
    found = set()
    edited = False
    for feature in result["features"]:
        properties = feature["properties"]
        geometry = shape(feature["geometry"])
        metadata = {**properties.get("metadata", {}), review.META_MODEL: result["properties"]["model"]["name"]}
        best = max(range(len(truth)), key=lambda i: truth[i].intersection(geometry).area)
        iou = truth[best].intersection(geometry).area / truth[best].union(geometry).area
        if iou >= 0.3 and best not in found:
            found.add(best)
            if not edited:
                geometry, edited = truth[best], True
                metadata[review.META_REVIEW] = "corrected"
                decisions["corrected"] += 1
            else:
                metadata[review.META_REVIEW] = "accepted"
                decisions["accepted"] += 1
        else:
            metadata[review.META_REVIEW] = "rejected"
            decisions["rejected"] += 1
        objects.append(ProjectObject(feature.get("id") or f"f{len(objects)}", geometry,
                                     properties["classification"]["name"], "annotation", metadata,
                                     dict(properties.get("measurements", {}))))
    for index, glomerulus in enumerate(truth):
        if index not in found:
            objects.append(ProjectObject(f"drawn-{index}", glomerulus, "Glomerulus", "annotation", {}, {}))
            decisions["drawn"] += 1
    objects.append(ProjectObject("region", box(0, 0, 512, 384), "Reviewed region", "annotation", {}, {}))
    return objects, decisions


def test_detect_review_label_train_detect_again_over_http(server, workspace):
    from hubseg.project.labelsets import build_label_set

    _, health = server.call("GET", "/v1/health", 200)
    assert health["active_model"] == workspace["v0"]

    # 1. detect with v0
    job, result = detect(server, workspace["slide"])
    assert result["properties"]["model"]["name"] == workspace["v0"]
    features = result["features"]
    assert len(features) >= 3, f"v0 should find the stained objects, got {len(features)}"
    ranks = [f["properties"]["measurements"]["hubseg rank"] for f in features]
    assert ranks == sorted(ranks), "review order: most uncertain first"

    # 2. review: accept some, reject the fold, edit one, add misses
    objects, decisions = review_like_a_pathologist(result)
    assert decisions["corrected"] == 1 and decisions["accepted"] >= 1 and decisions["rejected"] >= 1, decisions

    # 3. labels: the same label set `hubseg project export` would write
    label_set = build_label_set(objects, image_path=workspace["slide"], pixel_size_um=PIXEL_SIZE_UM, source="api")
    classes = [f["properties"]["classification"]["name"] for f in label_set["features"]["features"]]
    assert classes.count("Rejected") == decisions["rejected"]
    assert classes.count("Glomerulus") == decisions["accepted"] + decisions["corrected"] + decisions["drawn"]
    _, created = server.call("POST", "/v1/labels", 201, json=label_set)
    _, stored = server.call("GET", "/v1/labels/{id}", 200, path_args={"id": created["id"]})
    _, listing = server.call("GET", "/v1/labels", 200)
    assert created["id"] in json.dumps(listing)

    # 4. fine-tune v0 on it
    before = {m["name"] for m in server.call("GET", "/v1/models", 200)[1]["models"]}
    request = {"base_model": workspace["v0"], "label_sets": [created["id"]], "params": {"epochs": 3, "batch_size": 4, "seed": 0}}
    _, training = server.call("POST", "/v1/trainings", 202, json=request)
    training = server.wait(training["id"])
    assert training["state"] == "succeeded", training.get("error")
    assert training["kind"] == "training" and training["progress"]["done"] == training["progress"]["total"]
    new_model = training["new_model"]

    # 5. a new version is registered (not activated), fine-tuned from v0
    _, models = server.call("GET", "/v1/models", 200)
    names = {m["name"] for m in models["models"]}
    assert names - before == {new_model} and new_model != workspace["v0"]
    _, card = server.call("GET", "/v1/models/{name}", 200, path_args={"name": new_model})
    assert workspace["v0"] in json.dumps(card)
    # the job's last progress message says how the new version's gate was calibrated, as its card does
    assert training["progress"]["message"].startswith("calibration:")
    assert training["progress"]["message"] == card["metrics"]["calibration"]["message"]
    assert server.call("GET", "/v1/health", 200)[1]["active_model"] == workspace["v0"]

    # 6. detect again with the new version
    job2, result2 = detect(server, workspace["slide"], model=new_model)
    assert result2["properties"]["model"]["name"] == new_model
    assert job2["id"] != job["id"]
    for feature in result2["features"]:
        assert {"hubseg energy", "hubseg rank"} <= set(feature["properties"]["measurements"])
        assert shapely.is_valid(shape(feature["geometry"]))
