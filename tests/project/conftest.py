"""QuPath for the ``paquo`` tests: the user's own QuPath 0.6/0.7 installation.

It is found the way ``scripts/java_env.sh`` (``qupath_home``) finds it for the Java build and tests -- that
function is called here, so the rule is written once: ``QUPATH_HOME``, else ``PAQUO_QUPATH_DIR``, else paquo's
default search places. paquo reads ``PAQUO_QUPATH_DIR`` when it is first imported and starts its JVM once per
process, so the variable is set here, when pytest loads this conftest (before any test module of this folder is
imported).

Without an installation the ``paquo`` tests skip with that one reason. A ``QUPATH_HOME`` that holds no QuPath
0.6/0.7 is a wrong setting and fails them instead of skipping.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _find_qupath() -> str | None:
    """Set PAQUO_QUPATH_DIR (and JVM options) to the QuPath installation; returns None when set, else why not."""
    try:
        result = subprocess.run(
            ["bash", "-c", '. "$1/scripts/java_env.sh" && qupath_home', "qupath_home", str(ROOT)],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not run scripts/java_env.sh to find QuPath: {error}"
    found = result.stdout.strip().splitlines()
    if result.returncode != 0 or not found:
        return " ".join(result.stderr.split()) or f"scripts/java_env.sh: exit status {result.returncode}"
    os.environ["PAQUO_QUPATH_DIR"] = found[-1]
    # QuPath's PathPrefs writes Java user preferences: keep them in a temporary folder, not ~/.java;
    # the native-access flag silences JPype's warning on Java 24+; the heap cap keeps the shared CI host calm.
    prefs = Path(tempfile.mkdtemp(prefix="hubseg-qupath-prefs-"))
    atexit.register(shutil.rmtree, prefs, ignore_errors=True)
    os.environ.setdefault(
        "PAQUO_JAVA_OPTS", f"-Xmx1g --enable-native-access=ALL-UNNAMED -Djava.util.prefs.userRoot={prefs}"
    )
    return None


QUPATH_UNAVAILABLE = _find_qupath()


@pytest.fixture(scope="session")
def qupath_runtime() -> str:
    """The PAQUO_QUPATH_DIR the paquo tests run against (skip when there is none; fail on a wrong QUPATH_HOME)."""
    if QUPATH_UNAVAILABLE:
        if os.environ.get("QUPATH_HOME"):
            pytest.fail(f"QUPATH_HOME is set but unusable: {QUPATH_UNAVAILABLE}", pytrace=False)
        pytest.skip(f"needs QuPath 0.6/0.7: {QUPATH_UNAVAILABLE}")
    return os.environ["PAQUO_QUPATH_DIR"]


# --- fixtures of the paquo tests (one JVM per process: shared by the whole session) ---------------------
@pytest.fixture(scope="session")
def slides(tmp_path_factory) -> Path:
    """kidney-a.tif and kidney-b.tif: plain TIFFs with dark disks (paquo_helpers.DISKS)."""
    from tests.support.paquo import DISKS, write_plain_tiff

    root = tmp_path_factory.mktemp("slides")
    for name, disks in DISKS.items():
        write_plain_tiff(root / name, disks)
    return root


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """The deterministic threshold model (active; exact detections) and the tiny U-Net (to fine-tune)."""
    from hubseg.models.testing import make_threshold_model, make_tiny_model

    path = tmp_path_factory.mktemp("data")
    make_threshold_model(path, name="threshold-test-v1", pixel_size_um=1.0, tile_size=64, activate=True)
    make_tiny_model(path, name="tiny-test-v1", pixel_size_um=1.0, tile_size=64)
    return path


@pytest.fixture
def cli(capfd):
    """Run ``hubseg ARGS`` in this process (its JVM); returns (exit code, stdout, stderr) at the descriptor
    level, so anything the JVM prints is seen too."""
    from hubseg.cli import main

    def run(*args) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def predicted_template(qupath_runtime, tmp_path_factory, slides, data_dir) -> Path:
    """A project after one `hubseg project predict` (through the CLI), never modified by the tests."""
    from hubseg.cli import main

    from tests.support.paquo import DISKS, new_project

    project = new_project(tmp_path_factory.mktemp("predicted") / "proj", [slides / name for name in DISKS])
    assert main(["project", "predict", str(project), "--data-dir", str(data_dir)]) == 0
    return project


@pytest.fixture(scope="session")
def reviewed_template(predicted_template, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of the predicted project after a review in QuPath (paquo_helpers.review_in_qupath), with
    the reviewed objects' ids by role."""
    from tests.support.paquo import copy_project, review_in_qupath

    project = copy_project(predicted_template, tmp_path_factory.mktemp("reviewed"))
    return project, review_in_qupath(project)
