"""Shared pytest fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
AIDPATH_DIR = SHARED_DIR / "data" / "pas-glomeruli-aidpath"
AIDPATH_PIXEL_SIZE_UM = 0.4942


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real AIDPATH PAS tiles (images/, masks/); skips when ../shared is not beside the repo."""
    if not (AIDPATH_DIR / "images").is_dir():
        pytest.skip(f"real PAS data not found at {AIDPATH_DIR} (the shared/ folder beside the repository)")
    return AIDPATH_DIR
