"""Auth on/off, token from file and env, non-loopback bind refusal, traversal over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.server import ServerProcess, validate

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, template_data_dir, slides_root):
    import shutil

    data = tmp_path_factory.mktemp("auth-data") / "data"
    shutil.copytree(template_data_dir, data)
    token_file = tmp_path_factory.mktemp("secret") / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with ServerProcess(data, slides_roots=[slides_root], token=TOKEN, token_file=token_file) as proc:
        yield proc


def bare(server, method, path, headers=None, **kwargs):
    import requests

    return requests.request(method, server.url + path, headers=headers or {}, timeout=30, **kwargs)


def test_token_required_everywhere_but_health(token_server, slides_root):
    health = bare(token_server, "GET", "/v1/health")
    assert health.status_code == 200 and validate(health, "GET", "/v1/health")["auth_required"] is True
    assert bare(token_server, "GET", "/v1/openapi.json").status_code == 200
    protected = [("GET", "/v1/models", "/v1/models"), ("GET", "/v1/jobs", "/v1/jobs"),
                 ("GET", "/v1/labels", "/v1/labels"), ("POST", "/v1/detections", "/v1/detections"),
                 ("POST", "/v1/trainings", "/v1/trainings"), ("GET", "/v1/jobs/" + "0" * 32, "/v1/jobs/{id}"),
                 ("POST", "/v1/models/tiny-test-v1/activate", "/v1/models/{name}/activate"),
                 ("POST", "/v1/uploads", "/v1/uploads"), ("DELETE", "/v1/uploads/" + "0" * 32, "/v1/uploads/{id}")]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}):
        for method, path, template in protected:
            response = bare(token_server, method, path, headers=headers,
                            json={"image": {"path": str(slides_root / "slide.tif")}} if method == "POST" else None)
            assert response.status_code == 401, (method, path, headers)
            assert validate(response, method, template)["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # unknown endpoints do not reveal anything without a token either
    assert bare(token_server, "GET", "/v1/secret-stuff").status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert bare(token_server, "GET", "/v1/models", headers=good).status_code == 200
    # the job is never created without the token: nothing queued
    jobs = bare(token_server, "GET", "/v1/jobs", headers=good).json()["jobs"]
    assert jobs == []


def test_token_from_environment(tmp_path, template_data_dir, slides_root):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    env = dict(os.environ, HUBSEG_TOKEN="env-token-of-twenty-chars")
    with ServerProcess(data, slides_roots=[slides_root], token="env-token-of-twenty-chars", env=env) as proc:
        assert bare(proc, "GET", "/v1/models").status_code == 401
        assert proc.get("/v1/models").status_code == 200


def test_no_token_means_open_on_loopback(server):
    assert bare(server, "GET", "/v1/models").status_code == 200
    assert server.url.startswith("http://127.0.0.1:")


def run_serve(args, env=None, timeout=120):
    """``python -m hubseg_server`` = ``hubseg serve`` (same parser and code: hubseg_server.cli.main)."""
    environment = dict(os.environ if env is None else env)
    if env is None:
        environment.pop("HUBSEG_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "hubseg_server", *args], capture_output=True, text=True,
                          timeout=timeout, env=environment)


def test_serve_is_a_hubseg_subcommand(tmp_path):
    import argparse
    import importlib

    from hubseg import cli
    from hubseg.cli import serve

    assert "serve" in cli.COMMAND_MODULES
    parser = argparse.ArgumentParser(prog="hubseg")
    serve.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)])
    assert args.func is serve.run and args.port == 0 and args.slides_root is None
    assert serve.run(args) == 2  # refuses: non-loopback without a token
    missing = [name for name in cli.COMMAND_MODULES if importlib.util.find_spec(f"hubseg.cli.{name}") is None]
    if missing:
        pytest.skip(f"full `hubseg` dispatcher not checked: command modules not written yet: {', '.join(missing)}")
    result = subprocess.run([sys.executable, "-m", "hubseg", "serve", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "--slides-root" in result.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_non_loopback_bind_without_token_refuses(tmp_path, host):
    result = run_serve(["--host", host, "--port", "0", "--data-dir", str(tmp_path / "d")])
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to bind" in lines[0] and "token" in lines[0], result.stderr
    assert "listening" not in result.stdout


def test_bad_token_file_and_slides_root_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    for args in (["--token-file", str(empty)], ["--token-file", str(tmp_path / "missing")],
                 ["--slides-root", str(tmp_path / "nope")], ["--port", "70000"]):
        result = run_serve([*args, "--port" if "--port" not in args else "--data-dir",
                            "0" if "--port" not in args else str(tmp_path / "d")])
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_traversal_attempts_over_http(server, slides_root, outside_dir):
    attempts = [
        str(slides_root) + "/../" + outside_dir.name + "/secret.tif",
        str(slides_root / "escape.tif"),
        str(slides_root / "escape_dir" / "secret.tif"),
        "/etc/passwd",
        "/proc/self/environ",
    ]
    for path in attempts:
        response = server.post("/v1/detections", json={"image": {"path": path}})
        assert response.status_code == 403, path
        assert str(slides_root.resolve()) in validate(response, "POST", "/v1/detections")["error"]["message"]
        response = server.post("/v1/labels", json={"format": "hubseg-labelset/1", "image": {"path": path},
                                                   "pixel_size_um": 0.5, "regions": [], "features": {}})
        assert response.status_code == 403
    # percent-encoded segments in the JSON string are literal names, inside the root, that do not exist
    encoded = server.post("/v1/detections", json={"image": {"path": f"{slides_root}/%2e%2e/{outside_dir.name}/secret.tif"}})
    assert encoded.status_code == 404
    # percent-encoded traversal in URLs never reaches a file
    for url in ("/v1/jobs/..%2f..%2fetc%2fpasswd", "/v1/labels/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                "/v1/models/..%2F..%2Fetc", "/v1/../etc/passwd", "/v1/jobs/%00"):
        response = server.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_oversized_bodies_are_413_json_over_http(tmp_path, template_data_dir, slides_root):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(template_data_dir, data)
    with ServerProcess(data, slides_roots=[slides_root], extra_args=["--max-request-mb", "1"]) as proc:
        big = b"\x89PNG\r\n\x1a\n" + b"0" * (1536 * 1024)
        response = proc.post("/v1/detections", files={"image": ("r.png", big, "image/png")},
                             data={"origin": "[0, 0]", "downsample": "1", "pixel_size_um": "0.5"})
        assert response.status_code == 413
        assert validate(response, "POST", "/v1/detections")["error"]["code"] == "payload_too_large"
        response = proc.post("/v1/uploads", files={"image": ("r.png", big, "image/png")}, data={"pixel_size_um": "2"})
        assert response.status_code == 413
        assert validate(response, "POST", "/v1/uploads")["error"]["code"] == "payload_too_large"
        response = proc.post("/v1/labels", data=b"{" + b" " * (1200 * 1024) + b"}",
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert proc.get("/v1/health").status_code == 200
