"""The paquo store against a real QuPath install. Runs only where PAQUO_QUPATH_DIR points at QuPath."""

from __future__ import annotations

import os

import numpy as np
import pytest
from shapely.geometry import box

pytestmark = [
    pytest.mark.paquo,
    pytest.mark.skipif(
        not os.environ.get("PAQUO_QUPATH_DIR"),
        reason="needs a QuPath installation: set PAQUO_QUPATH_DIR to the QuPath folder to run the paquo tests",
    ),
]


@pytest.fixture
def qupath_project(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from paquo.projects import QuPathProject

    slide = tmp_path / "slide.ome.tif"
    rgb = np.full((1024, 1024, 3), 230, np.uint8)
    tifffile.imwrite(slide, rgb, tile=(256, 256), photometric="rgb", metadata={"axes": "YXS", "PhysicalSizeX": 0.5,
                     "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    path = tmp_path / "proj" / "project.qpproj"
    with QuPathProject(path, mode="x") as project:
        entry = project.add_image(slide)
        entry.hierarchy.add_annotation(box(800, 800, 900, 900))  # the user's own, unclassified
    return path


def proposals(offset=0):
    from hubseg.project import review
    from hubseg.project.store import NewObject

    return [NewObject(box(x + offset, 10 + offset, x + 60 + offset, 70 + offset), "Glomerulus",
                      metadata={review.META_MODEL: "m-v1", review.META_REVIEW: "pending"},
                      measurements={"hubseg energy": float(i)}) for i, x in enumerate((10, 110, 210))]


def test_predict_review_predict_export_status_through_paquo(qupath_project, tmp_path):
    from hubseg.project import batch, review
    from hubseg.project.qupath_project import open_project

    store = open_project(qupath_project, writable=True)
    (image,) = store.images()
    assert image.pixel_size_um == pytest.approx(0.5)
    batch.predict_project(store, lambda img: proposals(), processes=[])
    store.close()

    store = open_project(qupath_project, writable=True)  # read back what QuPath stored
    objects = store.read_objects(image)
    hubseg_objects = [o for o in objects if review.is_hubseg_object(o)]
    assert len(hubseg_objects) == 3 and all(review.is_edited(o) is False for o in hubseg_objects)
    assert all(o.class_name == "Glomerulus" and "hubseg energy" in o.measurements for o in hubseg_objects)

    # review in the project itself, as QuPath would store it
    entry = store._entry(image)
    by_x = {int(o.roi.bounds[0]): o for o in entry.hierarchy.annotations if o.roi.bounds[0] < 700}
    by_x[10].java_object.getMetadata().put("hubseg.review", "accepted")
    by_x[110].update_roi(box(110, 10, 180, 80))  # edited
    store._project.save()
    store.close()

    store = open_project(qupath_project, writable=True)
    report = batch.predict_project(store, lambda img: proposals(offset=2), processes=[])[0]
    assert (report.replaced, report.dropped_duplicates, report.added) == (1, 2, 1)
    rows = batch.status_project(store)
    assert rows[0]["accepted"] == 1 and rows[0]["corrected"] == 1 and rows[0]["pending"] == 1
    reports = batch.export_project(store, tmp_path / "labels", pixel_size_for=lambda img, path: 0.5)
    assert reports[0].positives == 2 and reports[0].path
    store.close()
    assert list((qupath_project.parent / "hubseg" / "backups").glob("*/*/data.qpdata"))
