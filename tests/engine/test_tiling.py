"""Tile grid and Gaussian weights; tiled inference equals untiled inference where the model sees the same pixels."""

from __future__ import annotations

import numpy as np
import pytest

from hubseg.inference import InferenceOptions, predict_maps
from hubseg.slide import ArraySlide
from hubseg.tiling import TileGrid, gaussian_importance


@pytest.mark.parametrize("size,tile,overlap", [(300, 64, 16), (64, 64, 16), (40, 64, 0), (1000, 256, 64), (257, 128, 127)])
def test_grid_covers_every_pixel_and_stays_inside(size, tile, overlap):
    grid = TileGrid(size, size // 2 + 1, tile, overlap)
    covered = np.zeros((grid.height, grid.width), int)
    for t in grid:
        assert 0 <= t.x and 0 <= t.y
        assert t.x + tile <= max(grid.width, tile) and t.y + tile <= max(grid.height, tile)
        covered[t.y:t.y + tile, t.x:t.x + tile] += 1
    assert (covered >= 1).all()
    assert len(list(grid)) == len(grid) == grid.shape[0] * grid.shape[1]
    if size > tile:
        steps = np.diff(grid.xs)
        assert (steps <= tile - overlap).all() and (steps > 0).all()


def test_gaussian_importance():
    w = gaussian_importance(64)
    assert w.shape == (64, 64) and w.dtype == np.float32
    assert w.max() == pytest.approx(1.0, abs=1e-6)
    assert (w > 0).all()
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    # sigma = tile / 8: one sigma from the centre the weight is exp(-1/2) of the peak (along an axis).
    centre = 31.5
    profile = w[31, :] / w[31, 31]
    x = np.arange(64) - centre
    np.testing.assert_allclose(profile, np.exp(-(x**2) / (2 * 8.0**2)) / np.exp(-(0.5**2) / (2 * 8.0**2)), rtol=1e-4)


def _slide(tissue_image):
    image = tissue_image(300, 420, disks=[(64, 64, 30, 40), (200, 150, 45, 90), (380, 250, 35, 20)], seed=3)
    return ArraySlide(image, 1.0)


@pytest.mark.parametrize("tta", ["none", "h", "flips", "all"])
def test_tiled_equals_untiled_with_pointwise_model(tissue_image, threshold_model_factory, tta):
    slide = _slide(tissue_image)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    tiled = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, tta=tta, tissue_detection=False))
    untiled = predict_maps(slide, model, options=InferenceOptions(tile_size=448, overlap=0, tta=tta, tissue_detection=False))
    assert tiled.tiles_total > 20 and untiled.tiles_total == 1
    assert tiled.probability.shape == untiled.probability.shape == (300, 420)
    np.testing.assert_allclose(tiled.probability, untiled.probability, atol=1e-5)
    np.testing.assert_allclose(tiled.energy, untiled.energy, atol=1e-5)
    assert tiled.probability.max() > 0.99 and tiled.probability.min() < 0.01


def test_tiled_equals_untiled_when_resampling(tissue_image, threshold_model_factory):
    """Model at 1.5 µm/px, slide at 0.4 µm/px: every tile is resampled, still identical to one big tile."""
    image = tissue_image(600, 700, disks=[(150, 150, 90, 40), (500, 400, 120, 60)], seed=1)
    slide = ArraySlide(image, 0.4)
    model = threshold_model_factory(pixel_size_um=1.5, tile_size=64)
    tiled = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=24, tissue_detection=False))
    untiled = predict_maps(slide, model, options=InferenceOptions(tile_size=256, overlap=0, tissue_detection=False))
    assert tiled.tiles_total > 1 and untiled.tiles_total == 1
    np.testing.assert_allclose(tiled.probability, untiled.probability, atol=1e-5)
    np.testing.assert_allclose(tiled.energy, untiled.energy, atol=1e-5)


def test_disk_backed_maps_equal_in_memory_maps_and_are_removed(tissue_image, threshold_model_factory):
    import os

    slide = _slide(tissue_image)
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    ram = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, disk_backed=False))
    disk = predict_maps(slide, model, options=InferenceOptions(tile_size=64, overlap=16, disk_backed=True, read_workers=3, batch_size=3))
    assert disk.disk_backed and not ram.disk_backed
    np.testing.assert_array_equal(np.asarray(disk.probability), ram.probability)
    np.testing.assert_array_equal(disk.read_rows("energy", 10, 50), ram.energy[10:50])
    folder = disk._tempdir
    assert os.path.isdir(folder)
    disk.close()
    assert not os.path.exists(folder)


def test_maps_know_their_level0_placement(tissue_image, threshold_model_factory):
    slide = ArraySlide(tissue_image(100, 100), 0.5, origin=(5000, 7000), downsample=2.0)
    model = threshold_model_factory(pixel_size_um=2.0, tile_size=32)
    maps = predict_maps(slide, model, options=InferenceOptions(tissue_detection=False))
    assert maps.origin == (5000.0, 7000.0)
    assert maps.downsample == pytest.approx(4.0)
    assert maps.pixel_size_um == 2.0
    assert maps.shape == (50, 50)


@pytest.mark.parametrize("width,height,tile,overlap", [(1, 1, 64, 16), (64, 64, 64, 16), (65, 300, 64, 16),
                                                       (1000, 257, 256, 64), (257, 999, 128, 127)])
def test_tile_count_matches_the_grid_without_building_it(width, height, tile, overlap):
    from hubseg.tiling import tile_count

    assert tile_count(width, height, tile, overlap) == len(TileGrid(width, height, tile, overlap))


def test_over_budget_region_is_refused_before_planning(tissue_image, threshold_model_factory):
    from hubseg.errors import InvalidInputError
    from hubseg.tiling import planned_tiles

    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    slide = ArraySlide(tissue_image(200, 200), 1.0)
    assert planned_tiles(1.0, (200, 200), 1.0, 64) == len(TileGrid(200, 200, 64, 16)) == 16
    with pytest.raises(InvalidInputError, match="16 tiles.*limit of 15"):
        predict_maps(slide, model, options=InferenceOptions(max_tiles=15))
    assert predict_maps(slide, model, options=InferenceOptions(max_tiles=16)).tiles_total == 16


def test_cancel_is_checked_while_planning(tissue_image, threshold_model_factory):
    """A cancel requested during tissue detection / grid planning stops the run before any batch."""
    from hubseg.errors import Cancelled

    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    slide = ArraySlide(tissue_image(400, 400), 1.0)
    calls, batches = [], []
    with pytest.raises(Cancelled, match="tissue detection"):
        predict_maps(slide, model, should_cancel=lambda: calls.append(1) or True,
                     progress=lambda done, total, message="": batches.append(done))
    assert calls and batches == [0]  # only the "planning" report: no batch ran
    options = InferenceOptions(tissue_detection=False)
    with pytest.raises(Cancelled, match="planning tiles"):
        predict_maps(slide, model, options=options, should_cancel=lambda: True)
