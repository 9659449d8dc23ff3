"""paquo runtime for the ``paquo`` tests: real QuPath 0.6.0 code from ``../shared/qupath-kit``.

paquo reads ``PAQUO_QUPATH_DIR`` when it is first imported and starts its JVM once per process, so the
variable is set here, when pytest loads this conftest (before any test module of this folder is
imported). A ``PAQUO_QUPATH_DIR`` already set (a real QuPath install) is used as it is. Otherwise the kit's
``make-runtime.sh`` lays out a QuPath-shaped folder in a temporary directory (a fraction of a second).

Where that cannot work the ``paquo`` tests skip with the reason: no ``../shared`` beside the repository
(like every test that needs the shared data), or no JDK >= 21 (the kit's exit 3). Any other failure -- a
Debian jar missing, the script failing -- also skips on a developer's machine but fails under CI
(``CI=true``), where ``.ci/run`` installs the jars: a skip there would hide a broken setup.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[2].parent / "shared" / "qupath-kit"


def _make_runtime() -> tuple[str, bool] | None:
    """Set PAQUO_QUPATH_DIR (and JVM options) from the kit. Returns None when set, else (why not, whether
    that is an accepted reason to skip even under CI)."""
    if os.environ.get("PAQUO_QUPATH_DIR"):
        return None
    script = KIT / "make-runtime.sh"
    if not script.is_file():
        return f"the QuPath kit is missing ({script} not found; it comes with the shared/ folder beside the repo)", True
    root = Path(tempfile.mkdtemp(prefix="hubseg-qupath-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    try:
        result = subprocess.run(["bash", str(script), str(root)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{script} did not run: {error}", False
    if result.returncode != 0 or not result.stdout.strip():
        reason = " ".join(result.stderr.split())[-400:] or f"exit status {result.returncode}"
        no_jdk = result.returncode == 3 and "no JDK" in reason
        return f"no QuPath runtime from the kit: {reason}", no_jdk
    os.environ["PAQUO_QUPATH_DIR"] = result.stdout.strip().splitlines()[-1]
    # QuPath's PathPrefs writes Java user preferences: keep them in the temporary folder, not ~/.java;
    # the native-access flag silences JPype's warning on Java 24+; the heap cap keeps the shared CI host calm.
    os.environ.setdefault(
        "PAQUO_JAVA_OPTS",
        f"-Xmx1g --enable-native-access=ALL-UNNAMED -Djava.util.prefs.userRoot={root / 'prefs'}",
    )
    return None


QUPATH_UNAVAILABLE = _make_runtime()


@pytest.fixture(scope="session")
def qupath_runtime() -> str:
    """The PAQUO_QUPATH_DIR the paquo tests run against (skip, or fail under CI, when there is none)."""
    if QUPATH_UNAVAILABLE:
        reason, skip_anywhere = QUPATH_UNAVAILABLE
        if not skip_anywhere and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"paquo tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
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
