"""`hubseg project predict`'s engine glue: an image entry's file → detection → objects to write."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from hubseg.project import batch, review
from hubseg.project.detection import image_pixel_size, make_image_detector
from hubseg.project.store import ImageRef

from tests.support.fakes import MemoryProjectStore

CENTRES = [(60, 60), (60, 190), (190, 120)]


@pytest.fixture
def slide_with_disks(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rgb = np.full((256, 256, 3), 245, np.uint8)  # glass
    rgb[20:240, 20:240] = (225, 170, 205)  # pale tissue, so the tissue mask covers the disks' surroundings
    for row, col in CENTRES:
        rr, cc = disk((row, col), 25, shape=rgb.shape[:2])
        rgb[rr, cc] = (150, 40, 120)  # stained (saturated) like tissue, darker than mid-grey
    path = tmp_path / "disks.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    return path


def test_predict_reads_the_entry_file_at_the_entry_pixel_size_and_writes_pending_objects(tmp_path, slide_with_disks):
    from hubseg.models.testing import make_threshold_model

    data_dir = tmp_path / "hubseg-data"
    make_threshold_model(data_dir, pixel_size_um=1.0, tile_size=64, activate=True)
    detect_image, model_name = make_image_detector(data_dir=str(data_dir), device="cpu")
    image = ImageRef("disks.tif", "1", slide_with_disks.as_uri(), 256, 256, pixel_size_um=1.0)
    store = MemoryProjectStore(tmp_path / "proj", [image])
    (report,) = batch.predict_project(store, detect_image, processes=[])
    objects = store.read_objects(image)
    assert report.added == len(objects) == len(CENTRES)
    for obj in objects:
        assert obj.metadata[review.META_MODEL] == model_name and obj.metadata[review.META_REVIEW] == "pending"
        assert obj.class_name in review.PROPOSAL_CLASSES
        assert {"hubseg energy", "hubseg probability", "hubseg rank"} <= set(obj.measurements)
        centre = obj.geometry.centroid
        assert min(abs(centre.y - r) + abs(centre.x - c) for r, c in CENTRES) < 6
    # run again with the same model: every proposal is replaced by its twin, nothing piles up
    (again,) = batch.predict_project(store, detect_image, processes=[])
    assert (again.replaced, again.added) == (len(CENTRES), len(CENTRES))
    assert len(store.read_objects(image)) == len(CENTRES)


def test_pixel_size_comes_from_override_then_qupath_then_the_file(tmp_path, slide_with_disks):
    image = ImageRef("disks.tif", "1", slide_with_disks.as_uri(), 256, 256, pixel_size_um=0.8)
    assert image_pixel_size(image, slide_with_disks, 0.25) == 0.25
    assert image_pixel_size(image, slide_with_disks) == 0.8
