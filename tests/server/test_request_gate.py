"""The bounded section for heavy request work: large JSON bodies and uploads share it, hold it until their
response is built, and never keep /v1/health waiting."""

from __future__ import annotations

import io
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.server import ServerProcess


def png(size=16) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (232, 182, 204)).save(buffer, "PNG")
    return buffer.getvalue()


def many_keys(count: int) -> bytes:
    """A JSON object of ``count`` unknown keys (about 12 bytes each): cheap to send, costly to walk."""
    return ("{" + ",".join(f'"k{i:07d}":0' for i in range(count)) + "}").encode()


def is_free(gate) -> bool:
    if gate._semaphore.acquire(blocking=False):
        gate.release()
        return True
    return False


def test_uploads_and_large_json_share_one_gate_and_health_never_enters(app_factory):
    app = app_factory(max_heavy_requests=1, max_heavy_waiting=0)
    client, gate = app.test_client(), app.config["HUBSEG_GATE"]
    gate.acquire("test")  # another heavy request is being processed
    try:
        busy_upload = client.post("/v1/uploads", data={"image": (io.BytesIO(png()), "a.png"), "pixel_size_um": "0.5"},
                                  content_type="multipart/form-data")
        busy_json = client.post("/v1/labels", data=many_keys(100_000), content_type="application/json")
        for response in (busy_upload, busy_json):
            assert response.status_code == 503, response.get_json()
            assert response.get_json()["error"]["code"] == "unavailable" and response.headers["Retry-After"]
        assert client.get("/v1/health").status_code == 200
        small = client.post("/v1/labels", json={"unknown": 1})  # small bodies never wait for the gate
        assert small.status_code == 400
    finally:
        gate.release()
    stored = client.post("/v1/uploads", data={"image": (io.BytesIO(png()), "a.png"), "pixel_size_um": "0.5"},
                         content_type="multipart/form-data")
    assert stored.status_code == 201, stored.get_json()
    refused = client.post("/v1/labels", data=many_keys(100_000), content_type="application/json")
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "k0000000"
    assert is_free(gate)  # given back after a success and after an error


def test_gate_waits_then_refuses_beyond_its_queue():
    from hubseg_server.gate import RequestGate

    gate = RequestGate(slots=1, waiting=1, wait_s=5)
    gate.acquire("a")
    entered = threading.Event()

    def second():
        gate.acquire("b")
        entered.set()
        gate.release()

    waiter = threading.Thread(target=second)
    waiter.start()
    deadline = threading.Event()
    for _ in range(100):  # wait (bounded) until the second request is queued
        if gate._queued == 1:
            break
        deadline.wait(0.01)
    with pytest.raises(Exception) as refused:
        gate.acquire("c")  # the one queue place is taken
    assert refused.value.status == 503
    gate.release()
    waiter.join(5)
    assert entered.is_set() and is_free(gate)


@pytest.fixture(scope="module")
def gate_server(tmp_path_factory, template_data_dir, slides_root):
    data = tmp_path_factory.mktemp("gate-data") / "data"
    shutil.copytree(template_data_dir, data)
    with ServerProcess(data, slides_roots=[slides_root], extra_args=["--threads", "8"]) as proc:
        yield proc


def test_health_answers_while_eight_wide_bodies_arrive(gate_server):
    body = many_keys(400_000)  # ~4.8 MB, inside the default byte and value limits
    done = threading.Event()
    health = []

    def poll():
        while not done.is_set() and len(health) < 200:
            health.append(gate_server.get("/v1/health", timeout=15).status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: gate_server.post("/v1/labels", data=body, timeout=60,
                                                           headers={"Content-Type": "application/json"}), range(8)))
    done.set()
    poller.join(30)
    assert health and all(code == 200 for code in health), health
    for reply in replies:
        assert reply.status_code in (400, 503), reply.text[:200]
        assert json.loads(reply.text)["error"]["message"]
