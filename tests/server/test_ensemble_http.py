"""Ensembles and reference glomeruli over real HTTP: the model list, detection with an ensemble, references."""

from __future__ import annotations

import hashlib
import io
import shutil

import pytest

from .conftest import DISKS
from tests.support.server import ServerProcess, validate
from .test_http_flow import detect, finished, result_of


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 80, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ensemble_server(tmp_path_factory, template_data_dir, slides_root):
    """A server whose registry adds a second threshold model, an ensemble of both, and a reference crop."""
    from hubseg.models import ModelRegistry
    from hubseg.models.card import ModelCard
    from hubseg.models.testing import make_ensemble, make_threshold_model

    data = tmp_path_factory.mktemp("ensemble-data") / "data"
    shutil.copytree(template_data_dir, data)
    registry = ModelRegistry(data)
    second = make_threshold_model(registry, "threshold-b-v1", pixel_size_um=1.0, tile_size=64, scale=6.0)
    make_ensemble(registry, [registry.card("threshold-test-v1"), second], name="threshold-ensemble-v1")
    folder = registry.path("threshold-test-v1")
    (folder / "references").mkdir()
    (folder / "references" / "1.jpg").write_bytes(_jpeg())
    card = ModelCard.load(folder)
    card.references = [{"file": "references/1.jpg", "sha256": hashlib.sha256(_jpeg()).hexdigest(), "width": 24,
                        "height": 16, "pixel_size_um": 1.0, "image": "synthetic", "area_um2": 100.0, "energy": 3.0,
                        "review_score": None}]
    card.save(folder)
    with ServerProcess(data, slides_roots=[slides_root]) as proc:
        yield proc


def test_ensemble_is_listed_and_detects_with_agreement_and_references(ensemble_server, slides_root):
    listed = validate(ensemble_server.get("/v1/models"), "GET", "/v1/models")
    ensemble = next(m for m in listed["models"] if m["name"] == "threshold-ensemble-v1")
    assert ensemble["architecture"]["kind"] == "ensemble" and len(ensemble["architecture"]["members"]) == 2
    job = detect(ensemble_server, {"image": {"path": str(slides_root / "slide.tif")}, "model": "threshold-ensemble-v1",
                                   "options": {"references": 2}})
    assert finished(ensemble_server, job["id"])["state"] == "succeeded"
    collection = result_of(ensemble_server, job["id"])
    assert collection["properties"]["model"]["name"] == "threshold-ensemble-v1"
    assert len(collection["features"]) == len(DISKS)
    measurements = [f["properties"]["measurements"] for f in collection["features"]]
    assert all(m["hubseg agreement"] == pytest.approx(1.0, abs=0.2) for m in measurements)
    ranks = sorted(m["hubseg reference rank"] for m in measurements if "hubseg reference rank" in m)
    assert ranks == [1, 2]
    energies = {m.get("hubseg reference rank"): m["hubseg energy"] for m in measurements}
    assert energies[1] >= energies[2] >= energies[None]  # the most certain objects are the references


def test_references_option_is_validated(ensemble_server, slides_root):
    for bad in (-1, 101, 2.5, "3", True):
        response = ensemble_server.post("/v1/detections", json={"image": {"path": str(slides_root / "slide.tif")},
                                                               "options": {"references": bad}})
        body = validate(response, "POST", "/v1/detections")
        assert 400 <= response.status_code < 500 and "options.references" in body["error"]["message"], body


def test_reference_crops_are_served_from_the_card(ensemble_server):
    card = validate(ensemble_server.get("/v1/models/threshold-test-v1"), "GET", "/v1/models/{name}")
    [entry] = card["references"]
    assert entry["url"] == "/v1/models/threshold-test-v1/references/1"
    response = ensemble_server.get(entry["url"])
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
    missing = ensemble_server.get("/v1/models/threshold-test-v1/references/2")
    body = validate(missing, "GET", "/v1/models/{name}/references/{index}")
    assert missing.status_code == 404 and "valid indexes: 1" in body["error"]["message"]
    unknown = ensemble_server.get("/v1/models/nope-v1/references/1")
    assert unknown.status_code == 404
