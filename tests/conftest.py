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


# ---- shared engine fixtures: real pyramidal TIFFs, synthetic tissue, tiny real models -----------------------
import numpy as np  # noqa: E402


def synthetic_tissue(height: int, width: int, disks=(), background=(235, 200, 225), glass_border: int = 0, seed: int = 0):
    """uint8 RGB "PAS-like" image: pink tissue (saturated, light) with dark purple disks (x, y, radius, grey).

    The deterministic threshold test model calls pixels darker than mid-grey foreground, so each disk is one
    object. ``glass_border`` leaves a white (glass) frame of that many pixels around the tissue.
    """
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    noise = rng.integers(-6, 7, size=(height, width, 1))
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    for disk in disks:
        cx, cy, radius = disk[:3]
        value = disk[3] if len(disk) > 3 else 60
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
        image[inside] = (value, max(0, value - 30), min(255, value + 40))
    if glass_border:
        g = glass_border
        image[:g] = 255
        image[-g:] = 255
        image[:, :g] = 255
        image[:, -g:] = 255
    return image


def write_pyramid_tiff(
    path,
    rgb: np.ndarray,
    pixel_size_um: float | None = 0.5,
    *,
    ome: bool = True,
    levels: int = 3,
    tile: int = 64,
    compression: str = "deflate",
    resolution_tags: bool = True,
    description: str | None = None,
):
    """Write a real tiled pyramidal (OME-)TIFF with tifffile: sub-resolutions 1/2, 1/4, ... as SubIFDs.

    ``ome=True`` puts PhysicalSizeX/Y (µm) in the OME-XML; ``resolution_tags`` writes XResolution +
    ResolutionUnit=CENTIMETER; ``pixel_size_um=None`` writes no calibration at all.
    """
    import tifffile
    from PIL import Image

    pyramid = [np.ascontiguousarray(rgb)]
    for _ in range(levels - 1):
        previous = Image.fromarray(pyramid[-1])
        pyramid.append(np.asarray(previous.resize((max(1, previous.width // 2), max(1, previous.height // 2)), Image.Resampling.BOX)))
    kwargs = dict(tile=(tile, tile), photometric="rgb", compression=compression)
    first = dict(kwargs)
    if pixel_size_um is not None and resolution_tags:
        first.update(resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
    if ome:
        metadata = {"axes": "YXS"}
        if pixel_size_um is not None:
            metadata.update(PhysicalSizeX=pixel_size_um, PhysicalSizeXUnit="µm", PhysicalSizeY=pixel_size_um, PhysicalSizeYUnit="µm")
        first["metadata"] = metadata
    else:
        first["metadata"] = None
        if description is not None:
            first["description"] = description
    with tifffile.TiffWriter(path, ome=ome) as tif:
        tif.write(pyramid[0], subifds=len(pyramid) - 1, **first)
        for level in pyramid[1:]:
            tif.write(level, subfiletype=1, **kwargs)
    return path


@pytest.fixture(scope="session")
def tissue_image():
    """The synthetic_tissue function (a fixture so tests in any folder can use it)."""
    return synthetic_tissue


@pytest.fixture(scope="session")
def tiff_writer():
    """The write_pyramid_tiff function."""
    return write_pyramid_tiff


@pytest.fixture(scope="session")
def threshold_model_factory():
    """Factory: ``threshold_model_factory(pixel_size_um=1.0, tile_size=64, energy_gate=None)`` → LoadedModel."""
    from hubseg.models.testing import threshold_loaded_model

    return threshold_loaded_model


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (the CI machine has two cores shared by every process)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def registry(tmp_path):
    """A model registry in a temporary data directory whose shipped folder is empty: only the test's models exist."""
    from hubseg.models.registry import ModelRegistry

    return ModelRegistry(tmp_path / "data", shipped_dir=tmp_path / "shipped")
