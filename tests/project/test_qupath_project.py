"""`hubseg project predict|export|status` on real QuPath projects: QuPath 0.6.0 code (the kit in
``../shared/qupath-kit``, see conftest.py) driven by paquo, projects created by paquo with plain striped
RGB TIFFs that QuPath opens through its own ImageJ server. Every result is read back by reopening the
project through paquo, i.e. as QuPath stored it.

One JVM serves the module (paquo starts it once per process), so the commands run in-process through
``hubseg.cli.main``; one test runs the real command line in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, box

from hubseg.project import review

pytestmark = [pytest.mark.paquo, pytest.mark.usefixtures("qupath_runtime", "one_torch_thread")]

REPO = Path(__file__).resolve().parents[2]
PIXEL_SIZE_UM = 0.5
BACKGROUND = (232, 182, 204)  # pink "tissue" (the threshold model: background)
NUCLEUS = (84, 40, 112)  # dark disks (the threshold model: foreground), r >= 40 px passes the minimum area
SLIDE_SIZE = (640, 448)
DISKS = {  # (cx, cy, r) in level-0 px
    "kidney-a.tif": [(110, 110, 44), (330, 200, 50), (520, 330, 40), (160, 340, 42)],
    "kidney-b.tif": [(200, 150, 46), (470, 300, 44)],
}
MEASUREMENTS = {"hubseg energy", "hubseg probability", "hubseg rank", "Area µm^2", "Perimeter µm"}
OTHER_BOX = box(590, 10, 630, 50)  # the user's own unclassified-ish annotation, away from every disk


def write_plain_tiff(path: Path, disks, pixel_size_um: float = PIXEL_SIZE_UM) -> Path:
    """Striped (not tiled) RGB TIFF with resolution tags: what the kit's ImageJ server opens."""
    import tifffile

    width, height = SLIDE_SIZE
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, r in disks:
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = NUCLEUS
    tifffile.imwrite(path, image, photometric="rgb", compression="zlib", rowsperstrip=64,
                     resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
    return path


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("slides")
    for name, disks in DISKS.items():
        write_plain_tiff(root / name, disks)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The deterministic threshold model (active; exact detections) and the tiny U-Net (fine-tuned below)."""
    from hubseg.models.testing import make_threshold_model, make_tiny_model

    path = tmp_path_factory.mktemp("data")
    make_threshold_model(path, name="threshold-test-v1", pixel_size_um=1.0, tile_size=64, activate=True)
    make_tiny_model(path, name="tiny-test-v1", pixel_size_um=1.0, tile_size=64)
    return path


def new_project(folder: Path, images: list[Path]) -> Path:
    """A QuPath project made by paquo, each image with one user annotation of class Other."""
    from paquo.classes import QuPathPathClass
    from paquo.projects import QuPathProject

    with QuPathProject(folder, mode="x") as project:
        for image in images:
            entry = project.add_image(image)
            entry.hierarchy.add_annotation(OTHER_BOX, path_class=QuPathPathClass("Other"))
    return folder / "project.qpproj"


def read_back(project_file: Path) -> dict[str, list[dict]]:
    """Every annotation/detection per image name, as QuPath reads them from disk (read-only project)."""
    from paquo.projects import QuPathProject

    images = {}
    with QuPathProject(project_file, mode="r") as project:
        for entry in project.images:
            objects = []
            hierarchy = entry.hierarchy
            for object_type, proxy in (("annotation", hierarchy.annotations), ("detection", hierarchy.detections)):
                for path_object in proxy:
                    metadata = path_object.java_object.getMetadata()
                    objects.append({
                        "id": str(path_object.java_object.getID()),
                        "type": object_type,
                        "class": path_object.path_class.name if path_object.path_class else None,
                        "roi": path_object.roi,
                        "measurements": dict(path_object.measurements),
                        "metadata": {str(k): str(metadata.get(k)) for k in metadata.keySet()},
                    })
            images[str(entry.image_name)] = objects
    return images


def server_helpers():
    """tests/server/helpers.py (the real server in a subprocess), loaded by path: tests/ is no package."""
    spec = importlib.util.spec_from_file_location("server_test_helpers", REPO / "tests" / "server" / "helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hubseg_objects(objects: list[dict]) -> list[dict]:
    return sorted((o for o in objects if review.META_MODEL in o["metadata"]), key=lambda o: o["roi"].centroid.x)


def disk_at(name: str, geometry) -> tuple[int, int, int] | None:
    centre = geometry.centroid
    return next((d for d in DISKS[name] if Point(d[0], d[1]).distance(centre) < 6), None)


@pytest.fixture
def cli(capfd):
    """Run ``hubseg ARGS`` in this process (its JVM); returns (exit code, stdout, stderr) at the descriptor
    level, so anything the JVM prints is seen too."""
    from hubseg.cli import main

    def run(*args) -> tuple[int, str, str]:
        capfd.readouterr()
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def predicted_template(tmp_path_factory, slides, data_dir) -> Path:
    """A project after one `hubseg project predict` (through the CLI), never modified by the tests."""
    from hubseg.cli import main

    project = new_project(tmp_path_factory.mktemp("predicted") / "proj", [slides / name for name in DISKS])
    assert main(["project", "predict", str(project), "--data-dir", str(data_dir)]) == 0
    return project


def copy_project(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    shutil.copytree(template.parent, target)
    shutil.rmtree(target / "hubseg", ignore_errors=True)
    return target / "project.qpproj"


def review_in_qupath(project_file: Path) -> dict[str, str]:
    """What a pathologist does in QuPath, written through QuPath's own objects: on kidney-a accept one
    proposal, redraw one, reject one (class Rejected), leave one pending, and declare a reviewed region
    over the slide; on kidney-b draw their own Glomerulus over the second disk. Returns object ids by role."""
    from paquo.classes import QuPathPathClass
    from paquo.projects import QuPathProject

    roles = {}
    with QuPathProject(project_file, mode="r+") as project:
        a, b = sorted(project.images, key=lambda e: e.image_name)
        proposals = sorted((o for o in a.hierarchy.annotations if o.path_class and o.path_class.name == "Glomerulus"),
                           key=lambda o: o.roi.centroid.x)
        accepted, edited, pending, rejected = proposals  # by x: disks at 110, 160, 330, 520
        accepted.java_object.getMetadata().put(review.META_REVIEW, review.ACCEPTED)
        edited.update_roi(Point(160, 340).buffer(47))
        rejected.update_path_class(QuPathPathClass("Rejected"))
        region = a.hierarchy.add_annotation(box(0, 0, *SLIDE_SIZE), path_class=QuPathPathClass("Reviewed region"))
        mine = b.hierarchy.add_annotation(Point(470, 300).buffer(45), path_class=QuPathPathClass("Glomerulus"))
        for role, path_object in (("accepted", accepted), ("edited", edited), ("pending", pending),
                                  ("rejected", rejected), ("region", region), ("user_glomerulus", mine)):
            roles[role] = str(path_object.java_object.getID())
        project.save()
    return roles


@pytest.fixture(scope="module")
def reviewed_template(tmp_path_factory, predicted_template) -> tuple[Path, dict[str, str]]:
    project = copy_project(predicted_template, tmp_path_factory.mktemp("reviewed"))
    return project, review_in_qupath(project)


# --- predict ---------------------------------------------------------------------------------------------
def test_predict_writes_glomeruli_with_classes_measurements_and_metadata_that_qupath_reads_back(
    tmp_path, slides, data_dir, cli
):
    project = new_project(tmp_path / "proj", [slides / name for name in DISKS])
    user_before = {name: [o for o in objs if o["class"] == "Other"] for name, objs in read_back(project).items()}

    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 0, err
    assert "model: threshold-test-v1" in out and "kidney-a.tif: 4 added, 0 replaced" in out

    stored = read_back(project)
    for name, disks in DISKS.items():
        objects = hubseg_objects(stored[name])
        assert len(objects) == len(disks)
        assert sorted(disk_at(name, o["roi"]) for o in objects) == sorted(disks)  # one object per disk
        for obj in objects:
            cx, cy, r = disk_at(name, obj["roi"])
            assert obj["type"] == "annotation" and obj["class"] == "Glomerulus"
            assert MEASUREMENTS <= set(obj["measurements"])
            assert obj["measurements"]["Area µm^2"] == pytest.approx(math.pi * r * r * PIXEL_SIZE_UM**2, rel=0.15)
            assert 0.5 < obj["measurements"]["hubseg probability"] <= 1
            metadata = obj["metadata"]
            assert metadata[review.META_MODEL] == "threshold-test-v1"
            assert metadata[review.META_REVIEW] == review.PENDING
            assert float(metadata[review.META_ENERGY]) == pytest.approx(obj["measurements"]["hubseg energy"], rel=1e-4)
            # both fingerprints match the shape exactly as QuPath stored it
            assert metadata[review.META_GEOMETRY] == review.geometry_fingerprint(obj["roi"])
            assert metadata[review.META_SHAPE] == review.extension_fingerprint(obj["roi"])
        # the user's annotation is untouched
        user_after = [o for o in stored[name] if o["class"] == "Other"]
        assert [(o["id"], o["roi"].wkt) for o in user_after] == [(o["id"], o["roi"].wkt) for o in user_before[name]]

    from paquo.projects import QuPathProject

    with QuPathProject(project, mode="r") as opened:
        assert "Glomerulus" in [c.name for c in opened.path_classes]  # the project's class list has it

    code, out, err = cli("project", "status", project, "--json")
    assert code == 0, err
    rows = {row["image"]: row for row in json.loads(out)}  # stdout is exactly the JSON (no QuPath log lines)
    assert rows["kidney-a.tif"]["pending"] == 4 and rows["kidney-b.tif"]["pending"] == 2
    assert rows["kidney-a.tif"]["reviewed"] == 0


def test_second_predict_never_replaces_reviewed_or_user_objects(tmp_path, reviewed_template, data_dir, cli):
    project = copy_project(reviewed_template[0], tmp_path)
    roles = reviewed_template[1]
    before = {name: {o["id"]: o for o in objs} for name, objs in read_back(project).items()}

    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 0, err
    # kidney-a: the pending proposal is replaced; accepted, edited and rejected ones are kept, and their
    # disks are not proposed again. kidney-b: both pending proposals are replaced; the user's own
    # Glomerulus is kept and its disk not proposed again.
    assert "kidney-a.tif: 1 added, 1 replaced, 3 kept, 3 duplicates of kept objects skipped" in out
    assert "kidney-b.tif: 1 added, 2 replaced, 1 kept, 1 duplicates of kept objects skipped" in out

    after = read_back(project)
    a_after = {o["id"]: o for o in after["kidney-a.tif"]}
    for role in ("accepted", "edited", "rejected", "region"):
        kept, old = a_after[roles[role]], before["kidney-a.tif"][roles[role]]
        assert (kept["class"], kept["roi"].wkt, kept["metadata"]) == (old["class"], old["roi"].wkt, old["metadata"])
    assert roles["pending"] not in a_after
    replacement = [o for o in hubseg_objects(after["kidney-a.tif"]) if o["id"] not in before["kidney-a.tif"]]
    assert len(replacement) == 1 and disk_at("kidney-a.tif", replacement[0]["roi"])[:2] == (330, 200)
    assert replacement[0]["metadata"][review.META_REVIEW] == review.PENDING
    b_after = {o["id"]: o for o in after["kidney-b.tif"]}
    assert b_after[roles["user_glomerulus"]]["roi"].wkt == before["kidney-b.tif"][roles["user_glomerulus"]]["roi"].wkt
    # exactly one object per disk on both images (no duplicates piled up)
    for name in DISKS:
        label_objects = [o for o in after[name] if o["class"] in ("Glomerulus", "Rejected")]
        assert sorted(disk_at(name, o["roi"]) for o in label_objects) == sorted(DISKS[name])
        assert all(o["class"] == "Other" for o in after[name] if o["roi"].equals(OTHER_BOX))

    code, out, err = cli("project", "status", project, "--json")
    rows = {row["image"]: row for row in json.loads(out)}
    a, b = rows["kidney-a.tif"], rows["kidney-b.tif"]
    assert (a["accepted"], a["corrected"], a["rejected"], a["pending"], a["regions"]) == (1, 1, 1, 1, 1)
    assert (b["pending"], b["reviewed"], b["user_glomeruli"]) == (1, 0, 1)


# --- export ---------------------------------------------------------------------------------------------
def test_export_is_accepted_by_hubseg_train_and_by_the_server(tmp_path, reviewed_template, slides, data_dir, cli):
    from hubseg.labels import load_label_set
    from hubseg.models.registry import ModelRegistry

    project = reviewed_template[0]
    code, out, err = cli("project", "export", project, "-o", tmp_path / "labels")
    assert code == 0, err
    a_file, b_file = (tmp_path / "labels" / f"{name}.labelset.json" for name in DISKS)  # <image name>.labelset.json
    a_set, b_set = load_label_set(a_file), load_label_set(b_file)
    assert Path(a_set.image_path) == (slides / "kidney-a.tif").resolve() and a_set.pixel_size_um == PIXEL_SIZE_UM
    a_doc = json.loads(a_file.read_text())
    classes = sorted(f["properties"]["classification"]["name"] for f in a_doc["features"]["features"])
    # accepted + edited + pending inside the Reviewed region = positives, the rejected one = negative
    assert classes == ["Glomerulus", "Glomerulus", "Glomerulus", "Rejected"]
    assert len(a_doc["regions"]) == 1 and a_doc["model"] == "threshold-test-v1"
    b_doc = json.loads(b_file.read_text())  # only the user's own glomerulus, which brings its own region
    assert [f["properties"]["classification"]["name"] for f in b_doc["features"]["features"]] == ["Glomerulus"]

    train_dir = tmp_path / "train-data"
    shutil.copytree(data_dir, train_dir)
    code, out, err = cli("train", a_file, b_file, "--model", "tiny-test-v1", "--epochs", "1", "--batch-size", "2",
                         "--train-tile", "64", "--val-every", "1", "--device", "cpu", "--threads", "1",
                         "--data-dir", train_dir)
    assert code == 0, err
    assert "registered tiny-test-v2" in out
    card = ModelRegistry(train_dir).card("tiny-test-v2")
    assert card.provenance["base_model"] == "tiny-test-v1"
    assert [item["image"] for item in card.provenance["data"]] == [a_set.image_path, b_set.image_path]

    server_dir = tmp_path / "server-data"
    shutil.copytree(data_dir, server_dir)
    with server_helpers().ServerProcess(server_dir, slides_roots=[slides]) as server:
        code, out, err = cli("project", "export", project, "-o", tmp_path / "sent", "--to-server", server.url)
        assert code == 0, err
        ids = [line.rsplit("server id ", 1)[1].strip() for line in out.splitlines() if "server id " in line]
        assert len(ids) == 2
        stored = server.get(f"/v1/labels/{ids[0]}")
        assert stored.status_code == 200
        document = stored.json()
        assert document["image"]["path"] == str((slides / "kidney-a.tif").resolve())
        assert len(document["features"]["features"]) == 4
        listed = server.get("/v1/labels").json()["label_sets"]
        assert {item["id"] for item in listed} == set(ids)


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
        assert review.is_edited(obj) is False and review.is_replaceable(obj)  # both fingerprints still match
        assert obj.metadata[review.META_SHAPE] == review.extension_fingerprint(obj.geometry)
        assert obj.measurements == {"hubseg energy": 1.5}


def test_predict_uses_the_pixel_size_the_user_set_in_qupath(tmp_path, slides, data_dir, cli):
    """The file says 0.5 µm/px; the user corrected it to 1.0 in QuPath (Image tab), which QuPath stores with
    the entry. Detection must work at QuPath's value: areas in µm² four times the file's."""
    from jpype import JClass
    from paquo.projects import QuPathProject

    project = new_project(tmp_path / "proj", [slides / "kidney-b.tif"])
    with QuPathProject(project, mode="r+") as opened:
        image_data = opened.images[0]._image_data  # what QuPath's Image tab edits
        builder = JClass("qupath.lib.images.servers.ImageServerMetadata$Builder")(image_data.getServer().getMetadata())
        image_data.updateServerMetadata(builder.pixelSizeMicrons(1.0, 1.0).build())

    code, out, err = cli("project", "predict", project, "--data-dir", data_dir)
    assert code == 0, err
    objects = hubseg_objects(read_back(project)["kidney-b.tif"])
    assert len(objects) == 2
    for obj in objects:
        cx, cy, r = disk_at("kidney-b.tif", obj["roi"])
        assert obj["measurements"]["Area µm^2"] == pytest.approx(math.pi * r * r * 1.0**2, rel=0.15)
