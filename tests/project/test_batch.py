"""The project commands' library calls on an in-memory project (everything but the paquo calls)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from shapely.geometry import box, shape

from hubseg.errors import ConflictError, HubsegError, NotFoundError
from hubseg.project import batch, review
from hubseg.project.safety import QuPathProcess
from hubseg.project.store import ImageRef, NewObject

from tests.support.fakes import MemoryProjectStore


def proposals_at(*boxes):
    return [
        NewObject(box(*b), "Glomerulus", metadata={review.META_MODEL: "m-v1", review.META_REVIEW: "pending"},
                  measurements={"hubseg energy": 2.0 + i})
        for i, b in enumerate(boxes)
    ]


@pytest.fixture
def project(tmp_path):
    images = [
        ImageRef("slide A.tif", "1", (tmp_path / "slide A.tif").as_uri(), 2000, 2000, 0.5),
        ImageRef("slide-b.tif", "2", (tmp_path / "slide-b.tif").as_uri(), 2000, 2000, None),
    ]
    return MemoryProjectStore(tmp_path / "proj", images)


BOXES = [(0, 0, 40, 40), (100, 0, 140, 40), (200, 0, 240, 40), (300, 0, 340, 40), (400, 0, 440, 40)]


def test_second_prediction_replaces_only_unreviewed_unedited_objects(project):
    image = project.images()[0]
    first = batch.predict_project(project, lambda img: proposals_at(*BOXES), image_names=["slide A.tif"], processes=[])
    assert (first[0].added, first[0].replaced, first[0].backup) == (5, 0, first[0].backup)
    objects = {o.geometry.bounds: o for o in project.read_objects(image)}
    assert all(o.metadata[review.META_REVIEW] == "pending" and review.META_SHAPE in o.metadata for o in objects.values())
    # the pathologist: accept one, reject one, edit one, draw one, leave two pending
    project.update(image, objects[(0, 0, 40, 40)].key, metadata={review.META_REVIEW: "accepted"})
    project.update(image, objects[(100, 0, 140, 40)].key, class_name="Rejected")
    project.update(image, objects[(200, 0, 240, 40)].key, geometry=box(200, 0, 250, 45))
    user = project.add_user_object(image, box(900, 900, 960, 960), "Glomerulus")
    backup_before = (project.path.parent / "data" / "1" / "data.qpdata").read_bytes()

    # the new model proposes shapes near all of them, and one new glomerulus
    second = batch.predict_project(
        project, lambda img: proposals_at(*[(x + 1, y + 1, a + 1, b + 1) for x, y, a, b in BOXES], (905, 905, 955, 955), (1500, 0, 1540, 40)),
        image_names=["slide A.tif"], processes=[],
    )[0]
    assert (second.replaced, second.kept, second.dropped_duplicates, second.added) == (2, 4, 4, 3)
    after = project.read_objects(image)
    states = sorted((review.review_state(o), o.geometry.bounds) for o in after)
    assert states == [
        ("accepted", (0, 0, 40, 40)),
        ("corrected", (200, 0, 250, 45)),
        ("pending", (301, 1, 341, 41)),
        ("pending", (401, 1, 441, 41)),
        ("pending", (1500, 0, 1540, 40)),
        ("rejected", (100, 0, 140, 40)),
        ("user", (900, 900, 960, 960)),
    ]
    assert user.key in {o.key for o in after}
    backup = project.path.parent / "hubseg" / "backups"
    copies = sorted(backup.glob("*/1/data.qpdata"))
    assert len(copies) == 2 and copies[-1].read_bytes() == backup_before
    assert not (project.path.parent / "hubseg" / "write.lock").exists()


def test_refuses_while_qupath_runs_and_writes_nothing(project, tmp_path):
    qupath = QuPathProcess(4242, "/opt/QuPath/bin/QuPath", [])
    with pytest.raises(ConflictError, match="QuPath is running"):
        batch.predict_project(project, lambda img: proposals_at(*BOXES), processes=[qupath])
    assert project.writes == 0 and not (project.path.parent / "hubseg" / "backups").exists()
    # --force is for a QuPath that has another project open ...
    batch.predict_project(project, lambda img: proposals_at(*BOXES), force=True, processes=[qupath])
    assert project.writes == 2
    # ... but never when that QuPath holds a file of this project
    holding = QuPathProcess(4243, "QuPath", [str(project.path.parent / "data" / "1" / "data.qpdata")])
    with pytest.raises(ConflictError, match="has this project open"):
        batch.predict_project(project, lambda img: proposals_at(*BOXES), force=True, processes=[holding])
    image_holding = QuPathProcess(4244, "QuPath", [str(tmp_path / "slide A.tif")])
    with pytest.raises(ConflictError, match="has this project open"):
        batch.predict_project(project, lambda img: proposals_at(*BOXES), force=True, processes=[image_holding])


def test_unknown_image_names_list_the_valid_ones(project):
    with pytest.raises(NotFoundError, match="slide A.tif, slide-b.tif"):
        batch.predict_project(project, lambda img: [], image_names=["nope"], processes=[])


def test_status_counts_per_image(project):
    batch.predict_project(project, lambda img: proposals_at(*BOXES[:3]), processes=[])
    image = project.images()[1]
    first = project.read_objects(image)[0]
    project.update(image, first.key, metadata={review.META_REVIEW: "accepted"})
    rows = batch.status_project(project)
    assert [(r["image"], r["objects"], r["pending"], r["accepted"], r["reviewed"]) for r in rows] == [
        ("slide A.tif", 3, 3, 0, 0), ("slide-b.tif", 3, 2, 1, 1)
    ]


class _LabelsHandler(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, self.headers.get("Authorization"), body))
        if body["pixel_size_um"] > 50:
            payload, status = {"error": {"code": "invalid_input", "message": "pixel_size_um too large"}}, 422
        else:
            payload, status = {"id": f"ls-{len(type(self).received)}"}, 201
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_export_writes_label_sets_of_reviewed_images_and_posts_them(project, tmp_path):
    batch.predict_project(project, lambda img: proposals_at(*BOXES[:3]), processes=[])
    image = project.images()[0]
    objects = project.read_objects(image)
    project.update(image, objects[0].key, metadata={review.META_REVIEW: "accepted"})
    project.update(image, objects[1].key, metadata={review.META_REVIEW: "rejected"})
    project.add_user_object(image, box(0, 0, 150, 150), "Reviewed region")

    _LabelsHandler.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _LabelsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        reports = batch.export_project(
            project, tmp_path / "out", pixel_size_for=lambda img, path: img.pixel_size_um or 0.25, to_server=url, token="s3cret"
        )
        with pytest.raises(HubsegError, match="HTTP 422.*pixel_size_um too large"):
            batch.export_project(project, tmp_path / "out2", pixel_size_for=lambda img, path: 99.0, to_server=url)
    finally:
        server.shutdown()
    assert [(r.image, r.positives, r.negatives, r.regions, r.server_id, r.skipped) for r in reports] == [
        ("slide A.tif", 1, 1, 1, "ls-1", None),
        ("slide-b.tif", 0, 0, 0, None, "nothing reviewed"),
    ]
    written = json.loads((tmp_path / "out" / "slide_A.tif.labelset.json").read_text())
    path, auth, posted = _LabelsHandler.received[0]
    assert (path, auth, posted) == ("/v1/labels", "Bearer s3cret", written)
    assert written["image"]["path"].endswith("slide A.tif") and written["pixel_size_um"] == 0.5
    assert [shape(r).bounds for r in written["regions"]] == [(0, 0, 150, 150)]


def test_features_to_new_objects_keeps_engine_measurements_and_marks_pending():
    collection = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "x",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]},
        "properties": {"objectType": "annotation", "classification": {"name": "Glomerulus", "color": [1, 2, 3]},
                       "measurements": {"hubseg energy": 3.5, "hubseg rank": 1, "Area µm^2": 12.0},
                       "metadata": {"hubseg.model": "engine-model", "hubseg.review": "pending"}},
    }]}
    (obj,) = batch.features_to_new_objects(collection, "fallback")
    assert obj.class_name == "Glomerulus" and obj.color == (1, 2, 3) and obj.object_type == "annotation"
    assert obj.measurements == {"hubseg energy": 3.5, "hubseg rank": 1.0, "Area µm^2": 12.0}
    assert obj.metadata == {"hubseg.model": "engine-model", "hubseg.review": "pending", "hubseg.energy": "3.5"}


def test_an_unreadable_image_is_reported_and_the_batch_goes_on(project):
    from hubseg.errors import UnsupportedFormatError

    def detect_image(image):
        if image.name == "slide A.tif":
            raise UnsupportedFormatError("cannot read slide A.tif; supported formats: TIFF")
        return proposals_at(*BOXES[:2])

    reports = batch.predict_project(project, detect_image, processes=[])
    assert [(r.image, r.added, r.error) for r in reports] == [
        ("slide A.tif", 0, "cannot read slide A.tif; supported formats: TIFF"), ("slide-b.tif", 2, None)
    ]


def test_status_table_has_a_row_per_image_and_totals(project):
    from hubseg.cli.project import format_status

    batch.predict_project(project, lambda img: proposals_at(*BOXES[:2]), processes=[])
    lines = format_status(batch.status_project(project)).splitlines()
    assert lines[0].split() == ["image", "objects", "pending", "accepted", "rejected", "corrected", "reviewed",
                                "user_glomeruli", "regions"]
    assert lines[1].startswith("slide A.tif") and lines[-1].split()[:3] == ["TOTAL", "4", "4"]


def test_export_asks_for_the_pixel_size_only_of_images_with_labels_and_reports_one_failure_per_image(project, tmp_path):
    from hubseg.errors import MissingPixelSizeError

    first, second = project.images()
    for image in (first, second):
        project.add_user_object(image, box(0, 0, 150, 150), "Reviewed region")
    third = ImageRef("unreviewed.tif", "3", (tmp_path / "gone.tif").as_uri())  # file gone, nothing reviewed
    project._images.append(third)
    project.objects["3"] = []
    asked = []

    def pixel_size_for(image, path):
        asked.append(image.name)
        if image.pixel_size_um is None:
            raise MissingPixelSizeError(f"image {image.name!r} has no pixel size; pass --pixel-size-um")
        return image.pixel_size_um

    reports = batch.export_project(project, tmp_path / "out", pixel_size_for=pixel_size_for)
    assert asked == ["slide A.tif", "slide-b.tif"]  # never for the image without labels
    assert [(r.image, bool(r.path), r.skipped, r.error) for r in reports] == [
        ("slide A.tif", True, None, None),
        ("slide-b.tif", False, None, "image 'slide-b.tif' has no pixel size; pass --pixel-size-um"),
        ("unreviewed.tif", False, "nothing reviewed", None),
    ]
