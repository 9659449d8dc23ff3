"""The HITL benchmark's bookkeeping (ranking shares, split, simulated reviewer) on hand-made cases."""

from __future__ import annotations


import numpy as np
import pytest
from shapely.geometry import Point, box

from scripts import hitl_benchmark


@pytest.fixture(scope="module")
def bench():
    return hitl_benchmark


def proposal(bench, tile, index, energy, iou, truth_index=0, geometry=None):
    return bench.Proposal(tile, index, geometry or box(index * 100, 0, index * 100 + 50, 50), energy, 1 - 1 / (1 + energy),
                          iou, truth_index if iou > 0 else None)


def test_energy_order_finds_errors_first_when_errors_have_low_energy(bench):
    proposals = [proposal(bench, "t", i, energy=float(i), iou=0.1 if i < 2 else 0.9) for i in range(10)]
    result = bench.ranking_quality(proposals, seed=0)
    assert (result["tp"], result["fp"], result["errors"]) == (8, 2, 2)
    assert result["auroc_energy_tp_vs_fp"] == 1.0
    shares = result["share_of_errors_found"]
    assert shares["10%"]["energy"] == 0.5 and shares["20%"]["energy"] == 1.0
    assert shares["20%"]["random"] == pytest.approx(0.2, abs=0.03)


def test_split_is_by_tile_and_stratified_by_glomerulus_count(bench, tmp_path):
    tiles = [bench.Tile(f"{i:02d}", tmp_path / f"{i}.png", np.zeros((4, 4, 3), np.uint8), [box(0, 0, 1, 1)] * (i % 4))
             for i in range(12)]
    parts = bench.split_tiles(tiles, seed=0)
    names = [t.name for part in parts.values() for t in part]
    assert sorted(names) == sorted(t.name for t in tiles) and len(set(names)) == 12
    counts = [sum(len(t.truth) for t in part) for part in parts.values()]
    assert max(counts) - min(counts) <= 3


def test_simulated_reviewer_accepts_corrects_rejects_and_draws_misses(bench, tmp_path):
    truth = [Point(100, 100).buffer(40), Point(300, 100).buffer(40), Point(385, 175).buffer(15)]
    tile = bench.Tile("t", tmp_path / "t.png", np.zeros((400, 700, 3), np.uint8), truth)
    good = proposal(bench, "t", 0, 0.5, 0.95, 0, truth[0])
    rough = proposal(bench, "t", 1, 0.1, 0.6, 1, Point(310, 100).buffer(38))
    false = proposal(bench, "t", 2, 0.2, 0.0, None, box(600, 300, 650, 350))
    proposals = [good, rough, false]
    outcome = bench.simulate_review({"t": tile}, proposals, order=[1, 2, 0], k=2, model_name="m-v1")
    assert (outcome.reviewed, outcome.corrected, outcome.rejected, outcome.accepted) == (2, 1, 1, 0)
    assert outcome.drawn == 1  # the small glomerulus next to the corrected one, inside its reviewed region
    (name, label_set), = outcome.label_sets
    classes = sorted(f["properties"]["classification"]["name"] for f in label_set["features"]["features"])
    assert classes == ["Glomerulus", "Glomerulus", "Rejected"]
