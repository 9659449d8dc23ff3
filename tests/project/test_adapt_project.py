"""`hubseg adapt --project` on a real QuPath project (the user's QuPath 0.6/0.7, driven by paquo).

The project is the predicted template (``hubseg project predict`` wrote proposals into both images); the
pathologist then reviews kidney-a only (a Reviewed region, written through QuPath's own objects) and exports
it. Self-training must learn from the images nobody reviewed (kidney-b) and never from kidney-a's pixels as
pseudo-labels, with kidney-a's reviewed labels mixed in as real data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.paquo import SLIDE_SIZE, copy_project

pytestmark = [pytest.mark.paquo, pytest.mark.usefixtures("qupath_runtime", "one_torch_thread")]


def _review_kidney_a(project_file: Path) -> None:
    from paquo.classes import QuPathPathClass
    from paquo.projects import QuPathProject
    from shapely.geometry import box

    with QuPathProject(project_file, mode="r+") as project:
        kidney_a = next(e for e in project.images if e.image_name == "kidney-a.tif")
        kidney_a.hierarchy.add_annotation(box(0, 0, *SLIDE_SIZE), path_class=QuPathPathClass("Reviewed region"))
        project.save()


def test_adapt_project_learns_from_the_unreviewed_images_only(tmp_path, predicted_template, slides, data_dir, cli):
    from hubseg.models.registry import ModelRegistry
    from hubseg.models.testing import make_tiny_model

    project = copy_project(predicted_template, tmp_path / "proj")
    _review_kidney_a(project)
    code, _, err = cli("project", "export", project, "-o", tmp_path / "labels")
    assert code == 0, err
    label_set = tmp_path / "labels" / "kidney-a.tif.labelset.json"  # <image name>.labelset.json
    assert label_set.is_file()

    train_dir = tmp_path / "train-data"
    shutil.copytree(data_dir, train_dir)
    # a teacher with a calibrated confidence (self-training refuses one without): the tiny U-Net with a fixed gate
    make_tiny_model(train_dir, name="tiny-gated-v1", pixel_size_um=1.0, tile_size=64,
                    energy_gate={"cutoff": 0.0, "source": "test: a fixed cut-off"})
    # A tiny learning rate keeps the 1-epoch student next to its teacher: this checks which images are used and
    # what is recorded, not learning (tests/training/test_selftrain.py and scripts/bench_adaptation.py do that).
    code, out, err = cli("adapt", "--project", project, "--model", "tiny-gated-v1", "--labels", label_set,
                         "--epochs", "1", "--batch-size", "2", "--lr", "1e-6", "--freeze-bn", "--name", "lab-adapted-v1",
                         "--device", "cpu", "--threads", "1", "--data-dir", train_dir)
    assert code == 0, err
    assert "registered lab-adapted-v1" in out

    card = ModelRegistry(train_dir).card("lab-adapted-v1")
    record = card.provenance["self_training"]
    assert [Path(i["path"]) for i in record["images"]] == [(slides / "kidney-b.tif").resolve()]
    assert all(set(i) == {"path", "size", "sha256_first_mib"} for i in record["images"])  # identities, never pixels
    kinds = {d["kind"] for d in card.provenance["data"]}
    assert kinds == {"pseudo-labels", "label-sets"}
    pseudo = next(d for d in card.provenance["data"] if d["kind"] == "pseudo-labels")
    # one entry per teacher tile of the pseudo-labelled part, all of them on kidney-b
    assert pseudo["images"] and {Path(i["path"]).name for i in pseudo["images"]} == {"kidney-b.tif"}
    assert card.energy_gate is not None  # gated, whichever of the documented ways (docs/models.md)


def test_adapt_project_with_every_image_reviewed_is_one_line_exit_2(tmp_path, reviewed_template, data_dir, cli):
    project = copy_project(reviewed_template[0], tmp_path / "proj")  # kidney-a: a reviewed region; kidney-b: a drawn glomerulus
    code, out, err = cli("adapt", "--project", project, "--model", "tiny-test-v1", "--epochs", "1",
                         "--device", "cpu", "--threads", "1", "--data-dir", data_dir)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "has no unreviewed images" in lines[0], err
