"""No fragments: an object lying mostly inside another object's footprint is merged into it."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point, box

from hubseg.fragments import fragment_owners
from hubseg.instances import extract_instances

from .test_instances import FakeMaps

MODEL_UM = 1.5


def _field(h, w):
    yy, xx = np.mgrid[:h, :w]
    return xx * MODEL_UM, yy * MODEL_UM


def _maps(mask, energy_value=3.0):
    prob = np.where(mask, 0.9, 0.05).astype(np.float32)
    return FakeMaps(prob, np.where(mask, energy_value, 0.0).astype(np.float32), pixel_size_um=MODEL_UM)


def test_fragment_owners_on_polygons():
    big = Point(100, 100).buffer(60)
    ring = big.difference(Point(100, 100).buffer(45))  # a capsule ring
    tuft = Point(100, 100).buffer(30)  # inside the ring's hole: inside its footprint
    neighbour = Point(260, 100).buffer(55)  # a separate glomerulus
    half_in = box(150, 90, 190, 110)  # straddles the big disc's edge: ~ a quarter inside
    assert fragment_owners([ring, tuft, neighbour]) == {1: 0}
    assert fragment_owners([big, half_in]) == {}
    # a fragment of a fragment goes to the outermost owner
    assert fragment_owners([ring, tuft, Point(100, 100).buffer(10)]) == {1: 0, 2: 0}
    # equal sizes never merge; one object alone is nothing
    assert fragment_owners([Point(0, 0).buffer(10), Point(5, 0).buffer(10)]) == {}
    assert fragment_owners([big]) == {}


def test_sclerosed_glomerulus_in_pieces_is_one_object():
    """A capsule crescent with the collapsed tuft apart from it, and a tuft inside a capsule ring: each one
    object, not two; a separate glomerulus beside them stays separate."""
    xx, yy = _field(260, 420)
    r = np.hypot(xx - 110, yy - 190)
    theta = np.arctan2(yy - 190, xx - 110)
    crescent = (r > 70) & (r < 95) & (np.abs(theta) > 0.9)  # a C of capsule, open to the right
    tuft = np.hypot(xx - 125, yy - 190) < 42  # collapsed tuft inside the C, not touching it
    r2 = np.hypot(xx - 400, yy - 190)
    ring = (r2 > 60) & (r2 < 80)
    inner = r2 < 45
    other = np.hypot(xx - 540, yy - 80) < 60
    mask = crescent | tuft | ring | inner | other
    objects = extract_instances(_maps(mask), threshold=0.5, simplify_um=0)
    assert len(objects) == 3, [round(o.area_um2) for o in objects]
    unmerged = extract_instances(_maps(mask), threshold=0.5, simplify_um=0, merge_fragments=False)
    assert len(unmerged) == 5
    merged = sorted(objects, key=lambda o: o.centroid[0])
    assert merged[0].extra.get("merged_fragments") == 1 and merged[1].extra.get("merged_fragments") == 1
    assert not merged[2].extra
    # the merged object keeps every pixel and area of its pieces
    pieces = sorted(unmerged, key=lambda o: o.centroid[0])
    assert merged[0].pixel_count == pieces[0].pixel_count + pieces[1].pixel_count
    assert merged[0].area_um2 == pytest.approx(pieces[0].area_um2 + pieces[1].area_um2, rel=1e-6)


def test_fragment_merge_keeps_banded_equal_to_whole_map():
    xx, yy = _field(300, 300)
    r = np.hypot(xx - 220, yy - 220)
    mask = ((r > 60) & (r < 85)) | (r < 40) | (np.hypot(xx - 80, yy - 80) < 50)
    whole = extract_instances(_maps(mask), threshold=0.5, simplify_um=0.5, band_rows=None)
    banded = extract_instances(_maps(mask), threshold=0.5, simplify_um=0.5, band_rows=16)
    assert len(whole) == len(banded) == 2
    for a, b in zip(whole, banded):
        assert a.geometry.equals(b.geometry) and a.mean_energy == pytest.approx(b.mean_energy)
