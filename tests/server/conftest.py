"""Fixtures for the server tests: generated slides, data dirs with tiny registered models, servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, slide_image, write_slide

PIXEL_SIZE_UM = 0.5
# (cx, cy, r) in level-0 px; r >= 40 px (20 µm) so every disk passes the default minimum area
DISKS = [(110, 110, 44), (330, 200, 50), (520, 330, 40)]
SLIDE_SIZE = (640, 448)
SLOW_SLIDE_SIZE = (2048, 2048)  # ~1800 tiny-model tiles: several seconds on one CPU thread


@pytest.fixture(scope="session")
def slides_root(tmp_path_factory) -> Path:
    """A slides root with: slide.tif (calibrated pyramid, 3 dark disks), nocal.tif (no pixel size),
    garbage.tif (not an image), slow.tif (large, for cancel/restart), and a symlink pointing outside."""
    root = tmp_path_factory.mktemp("slides")
    write_slide(root / "slide.tif", slide_image(*SLIDE_SIZE, DISKS), PIXEL_SIZE_UM)
    write_slide(root / "nocal.tif", slide_image(256, 256, [(128, 128, 50)]), None, levels=1)
    (root / "garbage.tif").write_bytes(b"this is not a tiff at all" * 10)
    write_slide(root / "slow.tif", slide_image(*SLOW_SLIDE_SIZE, [(600, 600, 80)]), PIXEL_SIZE_UM, levels=3)
    outside = tmp_path_factory.mktemp("outside")
    write_slide(outside / "secret.tif", slide_image(256, 256, [(128, 128, 50)]), PIXEL_SIZE_UM, levels=1)
    os.symlink(outside / "secret.tif", root / "escape.tif")
    os.symlink(outside, root / "escape_dir")
    return root


@pytest.fixture(scope="session")
def outside_dir(slides_root) -> Path:
    return Path(os.path.realpath(slides_root / "escape_dir"))


def make_data_dir(path: Path) -> Path:
    """A data dir with the deterministic threshold model (active) and the tiny U-Net registered."""
    from hubseg.models.testing import make_threshold_model, make_tiny_model

    path.mkdir(parents=True, exist_ok=True)
    make_threshold_model(path, name="threshold-test-v1", pixel_size_um=1.0, tile_size=64, activate=True)
    make_tiny_model(path, name="tiny-test-v1", pixel_size_um=PIXEL_SIZE_UM, tile_size=64)
    return path


@pytest.fixture(scope="session")
def template_data_dir(tmp_path_factory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("template-data"))


@pytest.fixture
def data_dir(tmp_path, template_data_dir) -> Path:
    """A fresh copy of the template data dir (models registered once per session)."""
    import shutil

    target = tmp_path / "data"
    shutil.copytree(template_data_dir, target)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory, template_data_dir, slides_root):
    """One real server per test module (no auth)."""
    import shutil

    data = tmp_path_factory.mktemp("server-data") / "data"
    shutil.copytree(template_data_dir, data)
    with ServerProcess(data, slides_roots=[slides_root]) as proc:
        yield proc


# --- in-process app (Flask test client) for fast validation tests ------------------------------------
@pytest.fixture
def app_factory(data_dir, slides_root):
    from hubseg_server import Settings, create_app

    apps = []

    def make(**overrides):
        settings = Settings(
            data_dir=overrides.pop("data_dir", data_dir),
            slides_roots=overrides.pop("slides_roots", (slides_root,)),
            start_worker=overrides.pop("start_worker", False),
            **overrides,
        )
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["hubseg"].worker.stop(timeout=5)


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()
