"""Model tests run with one torch thread; the empty ``registry`` fixture lives in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield

