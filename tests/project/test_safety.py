"""QuPath-running check, the hubseg write lock, backups, image URIs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from hubseg.errors import ConflictError, UnsupportedFormatError
from hubseg.project import safety
from hubseg.project.store import path_from_uri


def test_recognises_qupath_launchers_but_not_other_java_programs():
    assert safety._looks_like_qupath("QuPath", ["/opt/QuPath/bin/QuPath"])
    assert safety._looks_like_qupath("java", ["/opt/QuPath/lib/runtime/bin/java", "-cp", "x.jar", "qupath.QuPath"])
    assert safety._looks_like_qupath("QuPath-0.5.1.exe", [r"C:\Program Files\QuPath-0.5.1\QuPath-0.5.1.exe"])
    assert not safety._looks_like_qupath("python", ["python", "-m", "hubseg", "project", "predict", "qupath-project"])
    assert not safety._looks_like_qupath("java", ["java", "-jar", "other.jar"])


def test_no_qupath_process_in_this_test_environment_is_this_process():
    assert all(proc.pid != os.getpid() for proc in safety.find_qupath_processes())


def test_write_lock_is_exclusive_and_taken_over_from_a_dead_process(tmp_path):
    with safety.ProjectWriteLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(ConflictError, match="another hubseg command is writing"):
            safety.ProjectWriteLock(tmp_path).__enter__()
    assert not lock.path.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.path.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "since": "x"}))
    with safety.ProjectWriteLock(tmp_path):
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_backup_copies_existing_files_only(tmp_path):
    data = tmp_path / "data" / "7"
    data.mkdir(parents=True)
    (data / "data.qpdata").write_bytes(b"abc")
    target = safety.backup_files([data / "data.qpdata", data / "missing"], tmp_path, "7", "stamp")
    assert target == tmp_path / "hubseg" / "backups" / "stamp" / "7"
    assert (target / "data.qpdata").read_bytes() == b"abc" and len(list(target.iterdir())) == 1
    assert safety.backup_files([data / "missing"], tmp_path, "7", "stamp2") is None


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths")
def test_image_uris_to_paths():
    assert str(path_from_uri("file:/data/slides/a%20b.ome.tif")) == "/data/slides/a b.ome.tif"
    assert str(path_from_uri("file:///data/x.svs")) == "/data/x.svs"
    assert str(path_from_uri("file:/C:/slides/x.svs")) == "C:/slides/x.svs"
    with pytest.raises(UnsupportedFormatError, match="not a local file"):
        path_from_uri("https://omero.example/iviewer?images=1")
