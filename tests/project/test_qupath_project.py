"""`hubseg project predict|export|status` on real QuPath projects: the user's QuPath 0.6/0.7
installation (QUPATH_HOME, see conftest.py) driven by paquo, projects created by paquo with plain striped
RGB TIFFs that QuPath opens through its own ImageJ server. Every result is read back by reopening the
project through paquo, i.e. as QuPath stored it.

One JVM serves the session (paquo starts it once per process), so the commands run in-process through
``hubseg.cli.main``. Safety, unreadable images, the real command line and shapes: test_qupath_safety.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from hubseg.project import review

from tests.support.paquo import (DISKS, MEASUREMENTS, OTHER_BOX, PIXEL_SIZE_UM, copy_project, disk_at, hubseg_objects,
                                 new_project, read_back)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.paquo, pytest.mark.usefixtures("qupath_runtime", "one_torch_thread")]


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
            # one fingerprint, matching the shape exactly as QuPath stored it
            assert review.META_GEOMETRY not in metadata
            assert metadata[review.META_SHAPE] == review.shape_fingerprint(obj["roi"])
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
    with ServerProcess(server_dir, slides_roots=[slides]) as server:
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
