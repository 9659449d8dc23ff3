"""detect(): whole objects across tile borders, tissue skipping, progress, cancel, energy gate, regions."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box, mapping

from hubseg.errors import Cancelled, InvalidInputError
from hubseg.pipeline import DetectionOptions, detect
from hubseg.slide import ArraySlide


def test_object_crossing_tile_borders_is_one_object(tissue_image, threshold_model_factory):
    # Tiles of 64 px advance by 48: a disk centred on a tile corner spans four tiles (and their overlaps).
    image = tissue_image(256, 256, disks=[(96, 96, 40, 50)])
    slide = ArraySlide(image, 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    result = detect(slide, model, options=DetectionOptions(tile_size=64, overlap=16, min_area_um2=50, simplify_um=0))
    assert result.tiles_total == 25
    assert len(result.objects) == 1
    obj = result.objects[0]
    assert obj.geometry.geom_type == "Polygon"
    assert obj.area_um2 == pytest.approx(np.pi * 40**2, rel=0.03)
    cx, cy = obj.centroid
    assert (cx, cy) == pytest.approx((96.5, 96.5), abs=0.5)


def test_empty_tiles_are_skipped_and_reported(tissue_image, threshold_model_factory):
    image = np.full((512, 512, 3), 250, np.uint8)  # glass
    image[:200, :200] = tissue_image(200, 200, disks=[(100, 100, 40, 60)])
    slide = ArraySlide(image, 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    calls = []

    def count_calls(batch):
        calls.append(len(batch))
        return original(batch)

    original = model.preprocess
    model.preprocess = count_calls
    result = detect(slide, model, options=DetectionOptions(tile_size=64, overlap=0, min_area_um2=50))
    assert result.tiles_total == 64
    assert 0 < result.tiles_skipped < 64 - 9
    assert sum(calls) == result.tiles_total - result.tiles_skipped
    assert len(result.objects) == 1
    props = result.to_feature_collection()["properties"]
    assert props["tiles"] == {"total": 64, "skipped": result.tiles_skipped}


def test_progress_reports_done_and_total(tissue_image, threshold_model_factory):
    slide = ArraySlide(tissue_image(200, 300, disks=[(50, 50, 20)]), 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    seen = []
    detect(slide, model, options=DetectionOptions(tile_size=64, overlap=16, batch_size=3), progress=lambda d, t, m: seen.append((d, t, m)))
    totals = {t for _, t, _ in seen}
    assert len(totals) == 1
    total = totals.pop()
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == total
    assert all(isinstance(m, str) for _, _, m in seen)


def test_cancel_between_batches(tissue_image, threshold_model_factory):
    slide = ArraySlide(tissue_image(300, 300), 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    seen = []

    def should_cancel():  # progress reports: "planning", "starting", then one per batch: stop after 2 batches
        return len(seen) >= 4

    with pytest.raises(Cancelled, match="between batches"):
        detect(slide, model, options=DetectionOptions(tile_size=64, batch_size=2), progress=lambda d, t, m: seen.append(d), should_cancel=should_cancel)
    assert len(seen) == 4 and seen[-1] - seen[1] == 4  # exactly two batches of 2 tiles ran
    assert max(seen) < 36


def test_energy_gate_classifies_uncertain_objects_and_orders_review(tissue_image, threshold_model_factory):
    # Darker disks → larger foreground logit → higher energy. Grey 110 is barely foreground (low energy).
    image = tissue_image(300, 400, disks=[(60, 60, 30, 20), (200, 150, 30, 110), (330, 240, 30, 60), (330, 60, 25, 100)])
    slide = ArraySlide(image, 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64, energy_gate={"cutoff": 1.5, "auroc": 0.9})
    result = detect(slide, model, options=DetectionOptions(min_area_um2=100))
    assert len(result.objects) == 4
    energies = [o.mean_energy for o in result.objects]
    assert energies == sorted(energies)
    assert [o.rank for o in result.objects] == [1, 2, 3, 4]
    uncertain = [o for o in result.objects if o.uncertain]
    assert 0 < len(uncertain) < 4
    assert all(o.class_name == "Glomerulus (uncertain)" for o in uncertain)
    assert all(o.mean_energy < 1.5 for o in uncertain)
    certain = [o for o in result.objects if not o.uncertain]
    assert all(o.class_name == model.card.class_name and o.mean_energy >= 1.5 for o in certain)
    assert result.objects[: len(uncertain)] == uncertain  # uncertain first
    fc = result.to_feature_collection()
    assert fc["properties"]["energy_gate"]["cutoff"] == 1.5
    assert fc["properties"]["uncertain_count"] == len(uncertain)
    for feature in fc["features"]:
        assert feature["properties"]["measurements"]["hubseg energy gate"] == 1.5
    colors = {tuple(f["properties"]["classification"]["color"]) for f in fc["features"]}
    assert len(colors) == 2
    # A custom name, and no gate at all.
    renamed = detect(slide, model, options=DetectionOptions(min_area_um2=100, uncertain_class_name="Check me"))
    assert {o.class_name for o in renamed.objects if o.uncertain} == {"Check me"}
    ungated = detect(slide, threshold_model_factory(pixel_size_um=1.0, tile_size=64), options=DetectionOptions(min_area_um2=100))
    assert not any(o.uncertain for o in ungated.objects)
    assert ungated.to_feature_collection()["properties"]["energy_gate"] is None


def test_region_and_geometry_restrict_detection(tissue_image, threshold_model_factory):
    image = tissue_image(300, 400, disks=[(60, 60, 30, 40), (300, 200, 40, 40)])
    slide = ArraySlide(image, 1.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    in_region = detect(slide, model, region=(200, 100, 200, 200), options=DetectionOptions(min_area_um2=100))
    assert len(in_region.objects) == 1 and in_region.objects[0].centroid[0] > 200
    assert in_region.region == (200.0, 100.0, 200.0, 200.0)
    half = mapping(box(0, 0, 300, 300))  # cuts the second disk in half
    clipped = detect(slide, model, geometry=half, options=DetectionOptions(min_area_um2=100))
    areas = sorted(o.area_um2 for o in clipped.objects)
    assert len(areas) == 2
    assert areas[0] == pytest.approx(np.pi * 40**2 / 2, rel=0.05)
    with pytest.raises(InvalidInputError, match="does not overlap"):
        detect(slide, model, region=(1000, 1000, 10, 10))


def test_array_slide_results_are_in_original_level0_coordinates(tissue_image, threshold_model_factory):
    # An upload downsampled 4× from a slide at 0.25 µm/px, placed at (10000, 20000).
    image = tissue_image(200, 200, disks=[(100, 100, 40, 40)])
    slide = ArraySlide(image, 0.25, origin=(10000, 20000), downsample=4.0)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    result = detect(slide, model, options=DetectionOptions(min_area_um2=100, simplify_um=0))
    (obj,) = result.objects
    cx, cy = obj.centroid
    assert cx == pytest.approx(10000 + 100.5 * 4, abs=2) and cy == pytest.approx(20000 + 100.5 * 4, abs=2)
    assert obj.area_um2 == pytest.approx(np.pi * 40**2, rel=0.03)  # 1 array px = 1 µm


def test_invalid_options_are_clear_errors(tissue_image, threshold_model_factory):
    slide = ArraySlide(tissue_image(64, 64), 1.0)
    model = threshold_model_factory()
    with pytest.raises(InvalidInputError, match="none, h, flips, all"):
        detect(slide, model, options=DetectionOptions(tta="rotate"))
    with pytest.raises(InvalidInputError, match="threshold"):
        detect(slide, model, options=DetectionOptions(threshold=1.5))
    with pytest.raises(InvalidInputError, match="annotation, detection"):
        detect(slide, model, options=DetectionOptions(object_type="cell"))


def test_tiny_random_unet_runs_end_to_end(tissue_image):
    """A real (tiny, random-init) smp U-Net through the whole pipeline, with TTA."""
    from hubseg.models.card import ModelCard
    from hubseg.models.loaded import LoadedModel
    from hubseg.models.testing import TINY_ARCHITECTURE, tiny_module

    card = ModelCard(name="tiny-test-v1", architecture=dict(TINY_ARCHITECTURE), pixel_size_um=1.0, tile_size=64, threshold=0.5)
    model = LoadedModel(card, tiny_module(0), device="cpu")
    slide = ArraySlide(tissue_image(150, 150, disks=[(75, 75, 30, 40)]), 1.0)
    result = detect(slide, model, options=DetectionOptions(tta="flips", min_area_um2=1))
    fc = result.to_feature_collection()
    assert fc["properties"]["model"] == {"name": "tiny-test-v1", "version": 1}
    for obj in result.objects:
        assert np.isfinite(obj.mean_energy) and 0 <= obj.mean_probability <= 1
