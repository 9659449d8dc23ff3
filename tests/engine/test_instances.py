"""Instance extraction: polygons in level-0 px, holes, minimum area, clipping, ranks, banded == whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from shapely.geometry import Point, box

from hubseg.geometry import rasterize_geometry, rasterize_labels
from hubseg.instances import extract_instances, mask_to_polygon


@dataclass
class FakeMaps:
    """In-memory PredictionMaps stand-in (same read_rows API)."""

    probability: np.ndarray
    energy: np.ndarray
    origin: tuple = (0.0, 0.0)
    downsample: float = 1.0
    pixel_size_um: float = 1.0

    @property
    def shape(self):
        return self.probability.shape

    def read_rows(self, name, y0, y1):
        return np.array(getattr(self, name)[max(0, y0):y1])


def _disk_map(h, w, disks):
    yy, xx = np.mgrid[:h, :w]
    prob = np.zeros((h, w), np.float32)
    energy = np.zeros((h, w), np.float32)
    for cx, cy, r, e in disks:
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        prob[inside] = 0.9
        energy[inside] = e
    return prob, energy


def test_mask_to_polygon_is_the_exact_pixel_outline_with_holes():
    mask = np.zeros((10, 12), bool)
    mask[2:8, 3:10] = True
    mask[4:6, 5:7] = False
    poly = mask_to_polygon(mask)
    assert poly.geom_type == "Polygon" and len(poly.interiors) == 1
    assert poly.area == mask.sum()
    assert poly.bounds == (3.0, 2.0, 10.0, 8.0)


def test_polygons_are_level0_with_measurements_and_ranks():
    prob, energy = _disk_map(200, 300, [(50, 50, 20, 3.0), (200, 120, 30, 1.0), (250, 40, 15, 2.0)])
    maps = FakeMaps(prob, energy, origin=(1000.0, 2000.0), downsample=4.0, pixel_size_um=2.0)  # level 0: 0.5 µm/px
    objects = extract_instances(maps, threshold=0.5, min_area_um2=10, simplify_um=0)
    assert [o.rank for o in objects] == [1, 2, 3]
    assert [round(o.mean_energy, 3) for o in objects] == [1.0, 2.0, 3.0]
    big = objects[0]
    cx, cy = big.centroid
    assert cx == pytest.approx(1000 + 200.5 * 4, abs=1) and cy == pytest.approx(2000 + 120.5 * 4, abs=1)
    # Area in µm²: map pixels × (2 µm)²; polygon area in level-0 px × (0.5 µm)².
    assert big.area_um2 == pytest.approx(big.pixel_count * 4.0, rel=0.02)
    assert big.area_um2 == pytest.approx(np.pi * 30**2 * 4.0, rel=0.03)
    assert big.perimeter_um == pytest.approx(big.geometry.length * 0.5)
    # Sub-pixel outlines measure a disk's perimeter (2πr) well; pixel staircases would be ~4/π too long.
    assert big.perimeter_um == pytest.approx(2 * np.pi * 30 * 2.0, rel=0.05)
    staircase = extract_instances(maps, threshold=0.5, min_area_um2=10, simplify_um=0, subpixel=False)[0]
    assert staircase.area_um2 == pytest.approx(staircase.pixel_count * 4.0)
    assert staircase.perimeter_um > 1.2 * 2 * np.pi * 30 * 2.0
    assert big.mean_probability == pytest.approx(0.9)


def test_minimum_area_and_small_holes_filled_large_holes_kept():
    prob = np.zeros((120, 120), np.float32)
    prob[10:60, 10:60] = 0.8
    prob[30:33, 30:33] = 0.0  # 9 px hole: filled
    prob[70:110, 60:110] = 0.8
    prob[80:100, 70:100] = 0.0  # 600 px hole: kept
    prob[5:8, 100:103] = 0.8  # 9 px speck: dropped
    maps = FakeMaps(prob, prob.copy())
    objects = extract_instances(maps, threshold=0.5, min_area_um2=100, simplify_um=0, subpixel=False)
    assert len(objects) == 2
    by_area = sorted(objects, key=lambda o: o.area_um2)
    assert by_area[0].geometry.area == 40 * 50 - 600 and len(by_area[0].geometry.interiors) == 1
    assert by_area[1].geometry.area == 2500 and len(by_area[1].geometry.interiors) == 0
    smooth = sorted(extract_instances(maps, threshold=0.5, min_area_um2=100, simplify_um=0), key=lambda o: o.area_um2)
    assert [len(o.geometry.interiors) for o in smooth] == [1, 0]
    for a, b in zip(smooth, by_area):
        assert a.geometry.area == pytest.approx(b.geometry.area, rel=0.05)


def test_clipping_to_a_geometry():
    prob, energy = _disk_map(100, 100, [(50, 50, 30, 1.0)])
    maps = FakeMaps(prob, energy)
    clip = box(0, 0, 50, 100)
    objects = extract_instances(maps, threshold=0.5, min_area_um2=1, simplify_um=0, mask_geometry=clip)
    assert len(objects) == 1
    assert objects[0].geometry.bounds[2] <= 50
    assert clip.buffer(1e-6).contains(objects[0].geometry)
    assert objects[0].geometry.area == pytest.approx(np.pi * 900 / 2, rel=0.05)


def _random_blobs(seed, h=300, w=160):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.random((h, w)), 4)
    prob = (noise - noise.min()) / (noise.max() - noise.min())
    energy = rng.random((h, w)).astype(np.float32)
    # A tall snake and a U shape that span many bands and join below their top rows.
    prob[20:280, 10:14] = 1.0
    prob[40:200, 120:124] = 1.0
    prob[40:200, 140:144] = 1.0
    prob[196:200, 120:144] = 1.0
    return prob.astype(np.float32), energy


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("band_rows", [7, 16, 50])
def test_banded_extraction_equals_whole_map_extraction(seed, band_rows):
    prob, energy = _random_blobs(seed)
    maps = FakeMaps(prob, energy, pixel_size_um=1.0)
    for merge in (False, True):  # with fragments merged (blobs inside the U's footprint) and without
        whole = extract_instances(maps, threshold=0.55, min_area_um2=5, simplify_um=0.5, band_rows=None,
                                  merge_fragments=merge)
        banded = extract_instances(maps, threshold=0.55, min_area_um2=5, simplify_um=0.5, band_rows=band_rows,
                                   merge_fragments=merge)
        assert len(whole) > (2 if merge else 5)
        assert len(banded) == len(whole)
        for a, b in zip(whole, banded):
            assert a.geometry.equals(b.geometry)
            assert a.mean_energy == pytest.approx(b.mean_energy)
            assert a.rank == b.rank


def test_rasterize_round_trip():
    geom = Point(40, 30).buffer(20)
    mask = rasterize_geometry(geom, (80, 100))
    assert abs(int(mask.sum()) - geom.area) / geom.area < 0.03
    labels = rasterize_labels([box(0, 0, 10, 10), box(20, 20, 30, 40)], (50, 50), origin=(0, 0), downsample=1.0)
    assert (labels == 1).sum() == 100 and (labels == 2).sum() == 200
    # A coarser grid placed elsewhere in level 0.
    coarse = rasterize_geometry(box(100, 100, 140, 140), (20, 20), origin=(80, 80), downsample=4.0)
    assert coarse.sum() == 100 and coarse[5:15, 5:15].all()
