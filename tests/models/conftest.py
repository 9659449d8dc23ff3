"""Fixtures for model tests: an empty registry in a temporary data directory, one torch thread."""

from __future__ import annotations

import pytest
import torch

from hubseg.models.registry import ModelRegistry


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    """A registry whose shipped folder is empty, so only the test's models exist."""
    return ModelRegistry(tmp_path / "data", shipped_dir=tmp_path / "shipped")
