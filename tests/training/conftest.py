"""Synthetic training data (glomerulus-like dark disks on pink tissue) and a tiny, fast training config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hubseg.models.registry import ModelRegistry
from training_helpers import write_image_folder


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "synthetic")


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "data", shipped_dir=tmp_path / "shipped")
