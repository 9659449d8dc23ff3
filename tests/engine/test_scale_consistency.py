"""Same tissue scanned at 0.25 / 0.5 / 1.0 / 3.0 µm/px gives the same objects (model at 1.5 µm/px).

3.0 µm/px is coarser than the model: the engine must upsample. Slides are real pyramidal OME-TIFFs.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from shapely import affinity

from hubseg.pipeline import DetectionOptions, detect
from hubseg.slide import open_slide

FINE_UM = 0.25
# Disks in µm: (x, y, radius, grey)
DISKS_UM = [(90.0, 90.0, 40.0, 50), (250.0, 120.0, 50.0, 70), (150.0, 228.0, 35.0, 40)]
WIDTH_UM, HEIGHT_UM = 360.0, 300.0


@pytest.fixture(scope="module")
def fine_image(tissue_image):
    synthetic_tissue = tissue_image
    scale = 1.0 / FINE_UM
    disks = [(x * scale, y * scale, r * scale, g) for x, y, r, g in DISKS_UM]
    return synthetic_tissue(int(HEIGHT_UM * scale), int(WIDTH_UM * scale), disks=disks, seed=7)


def _detect_at(pixel_size, fine_image, tmp_path, tiff_writer, model):
    factor = int(round(pixel_size / FINE_UM))
    image = Image.fromarray(fine_image)
    if factor > 1:
        image = image.resize((image.width // factor, image.height // factor), Image.Resampling.BOX)
    path = tiff_writer(tmp_path / f"scan_{pixel_size}.ome.tif", np.asarray(image), pixel_size, levels=2 if factor < 4 else 1)
    with open_slide(path) as slide:
        assert slide.pixel_size_um == pytest.approx(pixel_size)
        result = detect(slide, model, options=DetectionOptions(min_area_um2=200, simplify_um=0.5))
    # Geometries in µm so scans are comparable.
    return [affinity.scale(o.geometry, pixel_size, pixel_size, origin=(0, 0)) for o in result.objects], result


def test_objects_are_consistent_across_input_pixel_sizes(fine_image, tmp_path, tiff_writer, threshold_model_factory):
    model = threshold_model_factory(pixel_size_um=1.5, tile_size=64)
    per_scale = {}
    for pixel_size in (0.25, 0.5, 1.0, 3.0):
        geometries, result = _detect_at(pixel_size, fine_image, tmp_path, tiff_writer, model)
        assert len(geometries) == len(DISKS_UM), f"{pixel_size} µm/px: {len(geometries)} objects"
        per_scale[pixel_size] = sorted(geometries, key=lambda g: (g.centroid.x, g.centroid.y))
        for geometry in geometries:
            nearest = min(DISKS_UM, key=lambda d: (d[0] - geometry.centroid.x) ** 2 + (d[1] - geometry.centroid.y) ** 2)
            assert geometry.centroid.distance(type(geometry.centroid)(nearest[0], nearest[1])) < 2.0
            assert geometry.area == pytest.approx(np.pi * nearest[2] ** 2, rel=0.08)
        areas = [o.area_um2 for o in result.objects]
        assert sorted(areas) == pytest.approx(sorted(g.area for g in geometries), rel=1e-6)
    reference = per_scale[0.25]
    for pixel_size, geometries in per_scale.items():
        for a, b in zip(reference, geometries):
            iou = a.intersection(b).area / a.union(b).area
            assert iou > 0.9, f"{pixel_size} µm/px vs 0.25 µm/px: IoU {iou:.3f}"
