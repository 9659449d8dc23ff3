"""Touching glomeruli become separate objects; single glomeruli are never split; banded and
tiled extraction still equal whole-map / untiled extraction with splitting on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hubseg.instances import extract_instances
from hubseg.splitting import SplitOptions, split_touching

from .test_instances import FakeMaps

MODEL_UM = 1.5  # the default model's pixel size: what the maps of a real detection are at
AIDPATH_PIXEL_SIZE_UM = 0.4942


def _grid(h, w, pixel_um):
    yy, xx = np.mgrid[:h, :w]
    return xx * pixel_um, yy * pixel_um  # µm


def _pair(xx, yy, cx, cy, r1, r2, overlap_um, horizontal=True):
    """Two discs (µm) whose rims overlap by ``overlap_um`` along the x (or y) axis."""
    d = r1 + r2 - overlap_um
    dx, dy = (d / 2, 0) if horizontal else (0, d / 2)
    return (np.hypot(xx - cx + dx, yy - cy + dy) < r1) | (np.hypot(xx - cx - dx, yy - cy - dy) < r2)


def _maps(mask, pixel_um, energy=None):
    prob = np.where(mask, 0.9, 0.05).astype(np.float32)
    if energy is None:
        energy = np.where(mask, 3.0, 0.0).astype(np.float32)
    return FakeMaps(prob, energy.astype(np.float32), pixel_size_um=pixel_um)


@pytest.mark.parametrize("pixel_um", [MODEL_UM, 0.5])
@pytest.mark.parametrize("r1,r2,overlap", [(60, 60, 10), (60, 45, 15), (80, 50, 20), (70, 70, 35), (45, 40, 5)])
def test_touching_disks_become_two_objects(pixel_um, r1, r2, overlap):
    xx, yy = _grid(int(260 / pixel_um), int(420 / pixel_um), pixel_um)
    mask = _pair(xx, yy, 210, 130, r1, r2, overlap)
    assert ndi.label(mask)[1] == 1  # one connected component going in
    objects = extract_instances(_maps(mask, pixel_um), threshold=0.5, simplify_um=0)
    assert len(objects) == 2
    areas = sorted(o.area_um2 for o in objects)
    # Each part is (about) its disc: the cut runs through the neck.
    assert areas[0] == pytest.approx(np.pi * min(r1, r2) ** 2, rel=0.15)
    assert areas[1] == pytest.approx(np.pi * max(r1, r2) ** 2, rel=0.15)
    # Parts share their border: no gap, (almost) no overlap, together they are the whole component.
    a, b = objects[0].geometry, objects[1].geometry
    assert a.intersection(b).area < 0.01 * min(a.area, b.area)
    assert (a.area + b.area) * pixel_um**2 == pytest.approx(mask.sum() * pixel_um**2, rel=0.03)
    assert sum(o.pixel_count for o in objects) == mask.sum()


def _single_glomeruli(pixel_um):
    """Realistic single glomerular profiles (µm): round ones from a 40 µm polar cut to a 260 µm giant, and
    irregular ones — elongated, lobulated tufts, a notch at the vascular pole, a crescent, a bean."""
    xx, yy = _grid(int(320 / pixel_um), int(320 / pixel_um), pixel_um)
    cx = cy = 160.0
    r = np.hypot(xx - cx, yy - cy)
    theta = np.arctan2(yy - cy, xx - cx)
    shapes = {f"disc d={2 * radius:.0f} µm": r < radius for radius in (20, 35, 50, 75, 100, 130)}
    shapes.update({
        "ellipse 2:1": ((xx - cx) / 120) ** 2 + ((yy - cy) / 60) ** 2 < 1,
        "ellipse 3:1": ((xx - cx) / 150) ** 2 + ((yy - cy) / 50) ** 2 < 1,
        "five lobes": r < 80 * (1 + 0.15 * np.cos(5 * theta)),
        "three lobes": r < 80 * (1 + 0.25 * np.cos(3 * theta)),
        "notch at the pole": (r < 80) & ~((np.abs(theta) < 0.35) & (r > 40)),
        "crescent": (r < 90) & (np.hypot(xx - cx - 50, yy - cy) > 70),
        "bean": (r < 85) & (np.hypot(xx - cx, yy - cy - 95) > 45),
    })
    return shapes


@pytest.mark.parametrize("pixel_um", [MODEL_UM, 0.5, 1.0])
def test_single_glomeruli_are_never_split(pixel_um):
    for name, mask in _single_glomeruli(pixel_um).items():
        assert ndi.label(mask)[1] == 1, name
        parts, count = split_touching(mask, pixel_um)
        assert count == 1, f"{name} at {pixel_um} µm/px split into {count}"
        assert (parts == mask).all()


def test_annotated_aidpath_glomeruli_are_never_split(shared_data):
    """Every annotated glomerulus of the real AIDPATH tiles, at the model's pixel size: one object each."""
    from PIL import Image

    checked = 0
    for path in sorted((shared_data / "masks").glob("*.png")):
        mask = np.asarray(Image.open(path))
        foreground = (mask.max(axis=-1) if mask.ndim == 3 else mask) > 127
        size = round(foreground.shape[1] * AIDPATH_PIXEL_SIZE_UM / MODEL_UM), round(foreground.shape[0] * AIDPATH_PIXEL_SIZE_UM / MODEL_UM)
        small = np.asarray(Image.fromarray(foreground.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)) > 127
        labels, count = ndi.label(small)
        for index, sl in enumerate(ndi.find_objects(labels), start=1):
            component = labels[sl] == index
            if component.sum() * MODEL_UM**2 < 1000:
                continue
            assert split_touching(component, MODEL_UM)[1] == 1, f"{path.name} glomerulus {index} split"
            checked += 1
    assert checked >= 20


def test_split_can_be_turned_off_and_tuned():
    xx, yy = _grid(200, 300, MODEL_UM)
    mask = _pair(xx, yy, 225, 150, 60, 60, 30)  # neck 0.66 × the radius: split by default
    maps = _maps(mask, MODEL_UM)
    assert len(extract_instances(maps, simplify_um=0)) == 2
    assert len(extract_instances(maps, simplify_um=0, split=None)) == 1
    assert len(extract_instances(maps, simplify_um=0, split=SplitOptions(neck_ratio=0.5))) == 1
    # Parts below the minimum radius are not seeds: two touching 30 µm discs stay whole at a 40 µm minimum.
    small = _pair(xx, yy, 225, 150, 30, 30, 5)
    assert split_touching(small, MODEL_UM, SplitOptions(min_radius_um=40))[1] == 1
    assert split_touching(small, MODEL_UM, SplitOptions(min_radius_um=15, min_part_area_um2=0))[1] == 2
    # ... and 30 µm discs (2830 µm²) are not glomerulus-sized by default: never split off
    assert split_touching(small, MODEL_UM, SplitOptions(min_radius_um=15))[1] == 1


def test_split_only_separates_glomerulus_sized_parts_by_the_cards_reference_area():
    from hubseg.models.card import ModelCard
    from hubseg.splitting import DEFAULT_MIN_PART_AREA_UM2, split_options_for

    xx, yy = _grid(220, 320, MODEL_UM)
    pair = _pair(xx, yy, 240, 165, 70, 40, 8)  # a 15 400 µm² glomerulus touching a 5 030 µm² one
    assert split_options_for(ModelCard(name="plain")).min_part_area_um2 == DEFAULT_MIN_PART_AREA_UM2
    assert split_touching(pair, MODEL_UM, split_options_for(ModelCard(name="plain")))[1] == 2
    big = ModelCard(name="big", energy_gate={"cutoff": 1.0, "reference": {"median": 1.0, "scale": 1.0,
                                                                          "area_um2": {"p10": 8000.0, "median": 20000.0}}})
    assert split_options_for(big).min_part_area_um2 == 8000.0
    # for a model whose smallest glomeruli are 8000 µm², the 5030 µm² part is a bulge of one glomerulus
    assert split_touching(pair, MODEL_UM, split_options_for(big))[1] == 1


def _pairs_across_seams(h=300, w=240, pixel_um=MODEL_UM, seed=0):
    """Touching pairs of discs in every orientation, some with their neck on a band seam; plus noise blobs."""
    rng = np.random.default_rng(seed)
    xx, yy = _grid(h, w, pixel_um)
    mask = np.zeros((h, w), bool)
    for cx, cy, horizontal in ((90, 70, True), (270, 90, False), (90, 230, False), (260, 290, True), (110, 380, True)):
        r1, r2 = rng.uniform(35, 45, 2)
        mask |= _pair(xx, yy, cx, cy, r1, r2, rng.uniform(3, 8), horizontal)
    prob = np.where(mask, rng.uniform(0.6, 1.0, mask.shape), rng.uniform(0.0, 0.4, mask.shape)).astype(np.float32)
    energy = rng.random(mask.shape).astype(np.float32)
    return FakeMaps(prob, energy, pixel_size_um=pixel_um)


@pytest.mark.parametrize("band_rows", [7, 16, 40, 100])
def test_banded_extraction_equals_whole_map_extraction_with_splitting(band_rows):
    maps = _pairs_across_seams()
    whole = extract_instances(maps, threshold=0.5, min_area_um2=500, simplify_um=0.5, band_rows=None)
    banded = extract_instances(maps, threshold=0.5, min_area_um2=500, simplify_um=0.5, band_rows=band_rows)
    assert len(whole) == 10  # five pairs, each split in two
    assert len(banded) == len(whole)
    for a, b in zip(whole, banded):
        assert a.geometry.equals(b.geometry)
        assert a.mean_energy == pytest.approx(b.mean_energy)
        assert a.rank == b.rank


def test_tiled_detection_equals_untiled_detection_with_splitting(tissue_image, threshold_model_factory, one_torch_thread):
    """Whole pipeline, pointwise test model: small tiles and bands give the objects of one big tile."""
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.slide import ArraySlide

    # Level 0 at 0.75 µm/px, model at 1.5: discs of 40–45 µm radius touching across tile and band borders.
    disks = [(150, 160, 58), (255, 170, 55), (160, 330, 60), (175, 430, 52), (420, 300, 56), (500, 360, 58)]
    rgb = tissue_image(560, 600, disks)
    slide = ArraySlide(rgb, 0.75)
    model = threshold_model_factory(pixel_size_um=MODEL_UM, tile_size=64)
    common = dict(min_area_um2=500, simplify_um=0, tissue_detection=False)
    tiled = detect(slide, model, options=DetectionOptions(tile_size=64, overlap=16, band_rows=16, **common)).objects
    untiled = detect(slide, model, options=DetectionOptions(tile_size=512, overlap=0, band_rows=None, **common)).objects
    assert len(untiled) == 6
    assert len(tiled) == len(untiled)
    for a, b in zip(sorted(untiled, key=lambda o: o.centroid), sorted(tiled, key=lambda o: o.centroid)):
        assert a.geometry.symmetric_difference(b.geometry).area < 1e-3 * a.geometry.area
    merged = detect(slide, model, options=DetectionOptions(split_touching=False, **common)).objects
    assert len(merged) == 3


def test_a_component_filling_its_whole_box_keeps_every_pixel():
    """Seeds along a bar (no background pixel in its box): merged back into one, no pixel lost."""
    bar = np.ones((40, 200), bool)  # 60 × 300 µm rectangle: its distance ridge is flat
    parts, count = split_touching(bar, MODEL_UM)
    assert count == 1 and (parts == 1).all()
