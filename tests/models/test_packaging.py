"""Packaging: the wheel carries the data files without setuptools warnings, and the pinned
segmentation-models-pytorch range still loads the shipped default model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import warnings
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _requirement(name: str):
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement
    raise AssertionError(f"{name} not in dependencies")


def test_smp_has_an_upper_bound_and_the_installed_one_loads_the_default_model(tmp_path):
    from hubseg.models.registry import DEFAULT_MODEL_NAME, ModelRegistry

    requirement = _requirement("segmentation-models-pytorch")
    assert any(spec.operator == "<" for spec in requirement.specifier), "pin an upper bound for smp"
    installed = metadata.version("segmentation-models-pytorch")
    assert requirement.specifier.contains(installed), f"installed smp {installed} is outside {requirement.specifier}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # smp's timm- encoder notice; loading is what counts
        model = ModelRegistry(tmp_path / "data").load(DEFAULT_MODEL_NAME, device="cpu")  # strict state-dict load
    probability, energy = model.predict(np.full((1, 64, 64, 3), 240, np.uint8))
    assert np.isfinite(probability).all() and np.isfinite(energy).all()


def test_wheel_ships_the_data_without_setuptools_warnings(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools in the venv")
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "qupath-extension", "tests", "docs", "scripts")
    shutil.copytree(REPO, source, ignore=ignore)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
         str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "absent from the `packages` configuration" not in result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("hubseg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("hubseg/data/models/hubseg-pas-glomeruli-v1/card.json",
                     "hubseg/data/models/hubseg-pas-glomeruli-v1/weights.safetensors",
                     "hubseg/data/sample/aidpath-pas-sample.ome.tif", "hubseg/data/stain/aidpath-pas-reference.json",
                     "hubseg_server/openapi.json", "hubseg/cli/checks.py", "hubseg/tempmaps.py"):
        assert required in names, required
