"""Peak Python/numpy memory of detection does not grow with slide height (disk-backed maps, row bands).

Measured with tracemalloc (numpy reports its buffers to it); torch's own allocations are per batch and
constant. Not a timing test.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from hubseg.inference import InferenceOptions
from hubseg.pipeline import DetectionOptions, detect
from hubseg.slide import ArraySlide


def _strip(tissue_image, height: int) -> ArraySlide:
    disks = [(48, y, 30, 50) for y in range(100, height - 100, 400)]
    return ArraySlide(tissue_image(height, 96, disks=disks, seed=2), 1.0)


def _peak_bytes(slide, model) -> tuple[int, int]:
    # Tissue detection reads in bands of a constant number of source pixels (4 M) — larger than these small
    # test slides, so it is switched off here to see the stitching and extraction alone.
    options = DetectionOptions(tile_size=64, overlap=16, disk_backed=True, band_rows=256, min_area_um2=100,
                               tissue_detection=False)
    tracemalloc.start()
    try:
        result = detect(slide, model, options=options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result.count


def test_peak_memory_is_flat_in_slide_height(tissue_image, threshold_model_factory):
    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    short, tall = _strip(tissue_image, 4000), _strip(tissue_image, 16000)
    peak_short, count_short = _peak_bytes(short, model)
    peak_tall, count_tall = _peak_bytes(tall, model)
    assert count_short == 10 and count_tall == 40
    full_maps_tall = 2 * 16000 * 96 * 4  # probability + energy held in RAM would be this much
    assert peak_tall < full_maps_tall / 2, (peak_tall, full_maps_tall)
    assert peak_tall < 1.5 * peak_short + 256 * 1024, (peak_short, peak_tall)


def test_in_memory_maps_for_small_regions_are_the_default(tissue_image, threshold_model_factory):
    from hubseg.inference import predict_maps

    model = threshold_model_factory(pixel_size_um=1.0, tile_size=64)
    maps = predict_maps(_strip(tissue_image, 1000), model, options=InferenceOptions())
    assert not maps.disk_backed and isinstance(maps.probability, np.ndarray)
