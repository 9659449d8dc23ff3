"""`hubseg project` safety and robustness on real QuPath projects (QuPath 0.6.0 code through paquo, see
test_qupath_project.py): write lock, backups and the running-QuPath guard; moved and unreadable images;
the real command line's stdout; shapes QuPath stores differently from a plain polygon."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from shapely.geometry import Point, box

from hubseg.project import review

from tests.support.paquo import DISKS, REPO, copy_project, hubseg_objects, new_project, read_back, write_plain_tiff

pytestmark = [pytest.mark.paquo, pytest.mark.usefixtures("qupath_runtime", "one_torch_thread")]


# --- safety: lock, backups, a running QuPath ------------------------------------------------------------
def test_write_lock_backups_and_running_qupath_guard_on_a_real_project(tmp_path, predicted_template, data_dir, cli):
    project = copy_project(predicted_template, tmp_path)
    folder = project.parent
    entry_dirs = sorted(p for p in (folder / "data").iterdir() if (p / "data.qpdata").is_file())
    assert len(entry_dirs) == 2
    qpdata = {p.name: (p / "data.qpdata").read_bytes() for p in entry_dirs}
    ids_before = {name: sorted(o["id"] for o in objs) for name, objs in read_back(project).items()}

    # another hubseg command holds the lock (a live process on this host): refused, nothing written
    lock = folder / "hubseg" / "write.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}))
    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 2 and "another hubseg command is writing into this project" in err
    assert len(err.strip().splitlines()) == 1
    assert {p.name: (p / "data.qpdata").read_bytes() for p in entry_dirs} == qpdata

    # a QuPath process that holds a file of this project: refused even with --force
    holder = subprocess.Popen(
        ["QuPath", "-c", "import sys, time; f = open(sys.argv[1], 'rb'); print('open', flush=True); time.sleep(60)",
         str(entry_dirs[0] / "data.qpdata")],
        executable=sys.executable, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        lock.unlink()
        code, out, err = cli("project", "predict", project, "--force", "--data-dir", data_dir)
        assert code == 2 and f"QuPath (pid {holder.pid}) has this project open" in err, err
        assert {p.name: (p / "data.qpdata").read_bytes() for p in entry_dirs} == qpdata
    finally:
        holder.kill()
        holder.wait()

    # a lock left by a dead process is taken over; the run backs up each image right before writing
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "since": "then"}))
    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 0, err
    assert not lock.exists()
    backups = list((folder / "hubseg" / "backups").glob("*/*/data.qpdata"))
    assert sorted(b.parent.name for b in backups) == sorted(qpdata)
    assert {b.parent.name: b.read_bytes() for b in backups} == qpdata
    ids_after = {name: sorted(o["id"] for o in objs) for name, objs in read_back(project).items()}
    assert ids_after != ids_before  # the pending proposals were replaced

    # restoring a backup gives QuPath back the earlier objects
    for backup in backups:
        for file in backup.parent.iterdir():
            shutil.copy2(file, folder / "data" / backup.parent.name / file.name)
    assert {name: sorted(o["id"] for o in objs) for name, objs in read_back(project).items()} == ids_before


# --- images QuPath or hubseg cannot read ---------------------------------------------------------------
def test_a_moved_or_unreadable_image_does_not_stop_the_other_images(tmp_path, slides, data_dir, cli):
    images = []
    for name in ("good.tif", "moved.tif", "broken.tif"):
        images.append(write_plain_tiff(tmp_path / name, DISKS["kidney-b.tif"]))
    project = new_project(tmp_path / "proj", images)
    (tmp_path / "moved.tif").unlink()  # never opened since it was added: QuPath stored no data for it
    (tmp_path / "broken.tif").write_bytes(b"not a tiff" * 100)

    code, out, err = cli("project", "status", project)
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["good.tif", "moved.tif", "broken.tif", "TOTAL"]

    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 2
    assert "good.tif: 2 added" in out
    errors = err.strip().splitlines()
    assert len(errors) == 2 and "moved.tif" in errors[0] and "not found" in errors[0] and "broken.tif" in errors[1]
    stored = read_back(project)
    assert len(hubseg_objects(stored["good.tif"])) == 2
    assert hubseg_objects(stored["moved.tif"]) == [] and hubseg_objects(stored["broken.tif"]) == []

    code, out, err = cli("project", "predict", project, "--images", "good.tif", "--data-dir", data_dir)
    assert code == 0 and "good.tif: 2 added, 2 replaced" in out, err

    code, out, err = cli("project", "export", project, "-o", tmp_path / "labels")
    assert code == 0 and "moved.tif: skipped (nothing reviewed)" in out, err


# --- the real command line ------------------------------------------------------------------------------
def test_status_json_on_the_command_line_prints_only_json(predicted_template):
    """A fresh process: QuPath's start-up and DEBUG log lines must not reach stdout."""
    result = subprocess.run([sys.executable, "-m", "hubseg", "project", "status", str(predicted_template), "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(row["image"], row["pending"]) for row in rows] == [("kidney-a.tif", 4), ("kidney-b.tif", 2)]
    assert "DEBUG" not in result.stderr


# --- the store itself: shapes QuPath stores differently from a plain polygon ----------------------------
def test_holes_multipolygons_odd_vertices_and_detections_survive_a_save_and_reopen_unedited(tmp_path, slides):
    from shapely.geometry import MultiPolygon, Polygon

    from hubseg.project.qupath_project import open_project
    from hubseg.project.store import NewObject

    project = new_project(tmp_path / "proj", [slides / "kidney-b.tif"])
    shapes = [
        Point(100, 100).buffer(50).difference(Point(100, 100).buffer(20)),  # a ring: QuPath's GeometryROI
        MultiPolygon([Point(300, 100).buffer(30), Point(400, 100).buffer(25)]),
        Polygon([(500.123456, 300.98765), (600.5, 310.25), (550.3333, 400.1)]),  # not float32-exact
    ]
    store = open_project(project, writable=True)
    (image,) = store.images()
    metadata = {review.META_MODEL: "m-v1", review.META_REVIEW: review.PENDING}
    store.write_objects(image, [], [NewObject(s, "Glomerulus", metadata=dict(metadata),
                                              measurements={"hubseg energy": 1.5}) for s in shapes]
                        + [NewObject(box(20, 380, 60, 420), "Glomerulus", "detection", dict(metadata))])
    store.close()

    store = open_project(project)  # read-only, from disk
    (image,) = store.images()
    stored = sorted((o for o in store.read_objects(image) if review.is_hubseg_object(o)),
                    key=lambda o: o.geometry.centroid.x)
    store.close()
    detection = stored.pop(0)  # QuPath detections carry the metadata too
    assert (detection.object_type, detection.class_name, detection.metadata[review.META_REVIEW]) == \
        ("detection", "Glomerulus", review.PENDING)
    assert review.is_replaceable(detection)
    assert [o.geometry.geom_type for o in stored] == ["Polygon", "MultiPolygon", "Polygon"]
    assert len(stored[0].geometry.interiors) == 1
    for obj, original in zip(stored, shapes):
        assert obj.geometry.symmetric_difference(original).area < 1e-3 * original.area
        assert review.is_edited(obj) is False and review.is_replaceable(obj)  # the fingerprint still matches
        assert obj.metadata[review.META_SHAPE] == review.shape_fingerprint(obj.geometry)
        assert obj.measurements == {"hubseg energy": 1.5}
