"""Fixtures for the batch tests: five generated slides (one corrupt), a data dir with the deterministic
threshold model, and the reference GeoJSON ``hubseg detect`` writes for each good slide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PIXEL_SIZE_UM = 0.5
# (width, height, disks (cx, cy, r, grey)); r >= 40 px so each disk passes the default minimum area
GOOD_SLIDES = {
    "alpha": (768, 640, [(150, 150, 50, 50), (500, 400, 60, 70)]),
    "beta": (640, 768, [(320, 200, 45, 40)]),
    "gamma": (896, 640, [(120, 500, 50, 60), (450, 150, 44, 45), (700, 450, 55, 80)]),
    "delta": (640, 640, []),  # tissue without glomeruli: 0 objects is a valid result
}
CORRUPT = "broken"
DETECT_ARGS = ["--model", "threshold-test-v1", "--device", "cpu", "--tta", "flips"]


@pytest.fixture(scope="session")
def batch_slides(tmp_path_factory, tiff_writer, tissue_image) -> Path:
    """slides/alpha..delta.ome.tif (calibrated pyramids) and broken.ome.tif (a TIFF header, then garbage)."""
    folder = tmp_path_factory.mktemp("batch-slides")
    for seed, (name, (width, height, disks)) in enumerate(GOOD_SLIDES.items()):
        tiff_writer(folder / f"{name}.ome.tif", tissue_image(height, width, disks=disks, seed=seed), PIXEL_SIZE_UM)
    (folder / f"{CORRUPT}.ome.tif").write_bytes(b"II*\x00" + b"\x17garbage, not an image" * 200)
    return folder


@pytest.fixture(scope="session")
def batch_data_dir(tmp_path_factory) -> Path:
    from hubseg.models.testing import make_threshold_model

    folder = tmp_path_factory.mktemp("batch-data")
    make_threshold_model(folder, name="threshold-test-v1", pixel_size_um=1.0, tile_size=64)
    return folder


def comparable(collection: dict) -> dict:
    """A FeatureCollection without the per-run random feature UUIDs (everything else must match exactly)."""
    copy = json.loads(json.dumps(collection))
    for feature in copy["features"]:
        feature.pop("id", None)
    return copy


@pytest.fixture(scope="session")
def detect_reference(tmp_path_factory, batch_slides, batch_data_dir) -> dict[str, dict]:
    """``hubseg detect`` output of every good slide, by stem."""
    from hubseg.cli import main

    out = tmp_path_factory.mktemp("detect-reference")
    reference = {}
    for name in GOOD_SLIDES:
        target = out / f"{name}.geojson"
        code = main(["detect", str(batch_slides / f"{name}.ome.tif"), *DETECT_ARGS, "--data-dir", str(batch_data_dir),
                     "-o", str(target), "--quiet"])
        assert code == 0
        reference[name] = json.loads(target.read_text(encoding="utf-8"))
    return reference


def assert_batch_outputs(out_dir: Path, reference: dict[str, dict], summary: dict, skipped=()) -> None:
    """Every good slide: GeoJSON equal to detect's, an ok/skipped row with its counts; the corrupt one failed."""
    rows = {Path(row["path"]).name.split(".")[0]: row for row in summary["slides"]}
    assert set(rows) == set(GOOD_SLIDES) | {CORRUPT}
    for name, expected in reference.items():
        written = json.loads((out_dir / f"{name}.geojson").read_text(encoding="utf-8"))
        assert comparable(written) == comparable(expected), name
        row = rows[name]
        assert row["status"] == ("skipped" if name in skipped else "ok"), row
        assert row["glomeruli"] == len(expected["features"]) == len(GOOD_SLIDES[name][2])
        assert row["model"] == "threshold-test-v1" and len(row["model_sha256"]) == 64
        assert len(row["sha256_first_mib"]) == 64 and row["size_bytes"] > 0
        assert row["tissue_area_mm2"] > 0 and row["error"] == ""
    broken = rows[CORRUPT]
    assert broken["status"] == "failed" and broken["error"], broken
    assert "broken.ome.tif" in broken["error"] or "tiff" in broken["error"].lower(), broken["error"]
    assert not (out_dir / f"{CORRUPT}.geojson").exists()
    assert_no_temp_files(out_dir)


def assert_no_temp_files(out_dir: Path) -> None:
    leftovers = [p for p in out_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
