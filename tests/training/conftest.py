"""Synthetic training data (glomerulus-like dark disks on pink tissue) and a tiny, fast training config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.training import make_teacher, write_image_folder


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "synthetic")



@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """``(data dir, name)`` of a tiny real teacher trained once per test module (self-training tests copy the folder)."""
    data_dir = tmp_path_factory.mktemp("teacher") / "data"
    return data_dir, make_teacher(data_dir)
