"""``hubseg adapt`` end to end: a real tiny teacher, a generated slide, a new registered version."""

from __future__ import annotations

import hashlib
import json

import pytest

from hubseg.cli import main
from hubseg.models.registry import ModelRegistry
from tests.support.training import write_image_folder, write_unlabelled_slide


@pytest.fixture
def setup(teacher_dir, tmp_path, tiff_writer):
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(teacher_dir[0], data_dir)
    slide = write_unlabelled_slide(tmp_path / "unlabelled.ome.tif", tiff_writer)
    return data_dir, teacher_dir[1], slide


def _adapt(data_dir, *argv):
    # A tiny learning rate and the teacher's BatchNorm statistics keep the 1-epoch student next to its teacher, so
    # it finds the teacher's confident objects again and has an energy reference of its own: these tests check the
    # plumbing (provenance, gate transfer, rounds), not learning. Without them a 1-epoch tiny student sometimes
    # collapses (its BN statistics re-estimated on a few tiles).
    return main(["adapt", *map(str, argv), "--data-dir", str(data_dir), "--device", "cpu", "--threads", "1",
                 "--lr", "1e-6", "--freeze-bn"])


def test_adapt_registers_a_new_version_with_provenance(setup, capsys):
    data_dir, teacher, slide = setup
    registry = ModelRegistry(data_dir)
    teacher_card = registry.card(teacher).to_dict()
    assert _adapt(data_dir, slide, "--model", teacher, "--epochs", "1") == 0
    out = capsys.readouterr().out
    names = [c.name for c in registry.list()]
    assert "synthetic-v2" in names and "registered synthetic-v2" in out
    assert registry.card(teacher).to_dict() == teacher_card  # never overwritten

    card = registry.card("synthetic-v2")
    record = card.provenance["self_training"]
    assert record["round"] == 1 and record["rounds"] == 1 and record["teacher"] == teacher
    raw = slide.read_bytes()
    assert record["images"] == [{"path": str(slide.resolve()), "size": len(raw),
                                 "sha256_first_mib": hashlib.sha256(raw[: 1 << 20]).hexdigest()}]
    assert record["pseudo_positive_objects"] >= 1  # the tiny teacher varies run to run (CPU training is not bit-reproducible)
    assert 0.0 < record["ignored_tissue_fraction"] < 1.0
    assert record["rules"]["margin_um"] == 30.0
    assert record["rules"]["energy_cutoff"] == registry.card(teacher).energy_gate["cutoff"]
    assert card.provenance["base_model"] == teacher and card.provenance["epochs"] == 1
    pseudo = [d for d in card.provenance["data"] if d["kind"] == "pseudo-labels"]
    # one entry per teacher tile (the slide is 3 × 3 teacher tiles of the tiny model), each naming its slide
    tiles = pseudo[0]["images"]
    assert sum(t["confident_objects"] for t in tiles) == record["pseudo_positive_objects"]
    assert {t["path"] for t in tiles} == {str(slide.resolve())} and all(len(t["window"]) == 4 for t in tiles)
    assert record["teacher_tiles"]["tiles"] == 9 and record["teacher_tiles"]["held_back"] == 2 and len(tiles) == 7
    assert record["safety"]["held_back_images"] == 2 and record["safety"]["verdict"] in ("ok", "flagged")
    # the student's own gate: the teacher's standardised cut-off through the student's reference — or, when the
    # tiny 1-epoch student found none of the teacher's objects again (CPU training is not bit-reproducible), the
    # teacher's raw gate, labelled so. Never null. (transferred_gate's arithmetic: test_transferred_gate_maps_*.)
    gate = card.energy_gate
    assert gate is not None and gate["teacher"] == teacher
    if record["student_reference"] is not None:
        assert gate["source"] == "self-training"
        ref = gate["reference"]
        assert ref == record["student_reference"]
        assert gate["cutoff"] == pytest.approx(ref["median"] + gate["z_cutoff"] * ref["scale"], abs=1e-5)
        teacher_ref = gate["teacher_reference"]
        assert gate["z_cutoff"] == pytest.approx((gate["teacher_cutoff"] - teacher_ref["median"]) / teacher_ref["scale"], abs=1e-5)
    else:
        assert gate["source"] == "carried from teacher (raw)"
        assert gate["cutoff"] == registry.card(teacher).energy_gate["cutoff"]
    # identities, never pixels: the card stays small
    assert len(json.dumps(card.to_dict())) < 100_000


def test_two_rounds_chain_teachers_and_name_the_result(setup):
    data_dir, teacher, slide = setup
    assert _adapt(data_dir, slide, "--model", teacher, "--epochs", "1", "--rounds", "2", "--name", "lab-adapted") == 0
    registry = ModelRegistry(data_dir)
    first = registry.card("synthetic-v2")
    final = registry.card("lab-adapted")
    assert first.provenance["self_training"]["teacher"] == teacher
    assert final.provenance["self_training"]["teacher"] == "synthetic-v2"
    assert final.provenance["self_training"]["round"] == 2 and final.provenance["base_model"] == "synthetic-v2"


def test_labels_are_mixed_in(setup, tmp_path):
    data_dir, teacher, slide = setup
    labels = write_image_folder(tmp_path / "labelled", count=2, size=128, seed=3)
    assert _adapt(data_dir, slide, "--model", teacher, "--epochs", "1", "--labels", labels, "--pixel-size", "4.0") == 0
    card = ModelRegistry(data_dir).card("synthetic-v2")
    kinds = [d["kind"] for d in card.provenance["data"]]
    assert kinds == ["pseudo-labels", "label-sets"]
    # validation only ever on real labels: one of the two labelled tiles; the gate is calibrated on it
    # 7 teacher tiles (9 minus 2 held back) + one labelled tile
    assert card.provenance["train_images"] == 8 and card.provenance["validation_images"] == 1
    assert card.metrics["validation"]["image_names"][0] in ("000", "001")
    assert card.energy_gate is not None and card.energy_gate.get("source") != "self-training"


def test_bad_input_is_one_line_exit_2(setup, tmp_path, capsys):
    data_dir, teacher, slide = setup
    assert _adapt(data_dir, tmp_path / "missing.tif", "--model", teacher) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.tif" in err[0]
    assert main(["adapt", "--data-dir", str(data_dir)]) == 2
    assert "IMAGES or --project" in capsys.readouterr().err
    assert _adapt(data_dir, slide, "--model", teacher, "--rounds", "0") == 2
    assert "rounds" in capsys.readouterr().err
    assert [c.name for c in ModelRegistry(data_dir).list() if c.name.startswith("synthetic-v2")] == []


def test_transferred_gate_maps_the_teachers_standardised_cutoff_through_the_students_reference():
    from types import SimpleNamespace

    from hubseg.training.selftrain import transferred_gate

    teacher = SimpleNamespace(name="t-v1", energy_gate={"cutoff": 3.0})
    teacher_ref, student_ref = {"median": 4.0, "scale": 2.0}, {"median": 10.0, "scale": 4.0}
    gate = transferred_gate(teacher, teacher_ref, student_ref)
    assert gate["z_cutoff"] == pytest.approx(-0.5)  # (3 - 4) / 2
    assert gate["cutoff"] == pytest.approx(8.0)  # 10 - 0.5 × 4
    assert gate["source"] == "self-training" and gate["teacher"] == "t-v1" and gate["reference"] == student_ref
    assert transferred_gate(teacher, teacher_ref, None) is None
    assert transferred_gate(SimpleNamespace(name="t", energy_gate=None), teacher_ref, student_ref) is None
