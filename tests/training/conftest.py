"""Synthetic training data (glomerulus-like dark disks on pink tissue) and a tiny, fast training config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.training import write_image_folder


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "synthetic")

