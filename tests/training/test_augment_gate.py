import albumentations as A
import numpy as np
import pytest
import torch

from hubseg.training.augment import IGNORE_INDEX, HEDStainJitter, SectionEdge, build_augmentation, read_size
from hubseg.gating import energy_gate
from hubseg.training.recipe import dice_ce_loss


def _tile(size=96):
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal([200, 150, 190], 10, (size, size, 3)), 0, 255).astype(np.uint8)
    rgb[30:60, 30:60] = (110, 60, 140)
    mask = np.zeros((size, size), np.uint8)
    mask[30:60, 30:60] = 1
    mask[:, :8] = IGNORE_INDEX
    return rgb, mask


def test_hed_jitter_changes_stain_not_shape():
    rgb, _ = _tile()
    out = A.Compose([HEDStainJitter(strength_range=(0.3, 0.3), p=1.0)], seed=0)(image=rgb)["image"]
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() > 2


def test_section_edge_paints_glass_and_clears_labels_but_keeps_ignore():
    rgb, mask = _tile()
    for seed in range(5):
        out = A.Compose([SectionEdge(max_fraction=0.5, p=1.0)], seed=seed)(image=rgb, mask=mask)
        changed = np.any(out["image"] != rgb, axis=-1)
        assert 0.0 < changed.mean() < 0.6
        assert out["image"][changed].min() >= 200  # bright glass
        assert (out["mask"][changed & (mask != IGNORE_INDEX)] == 0).all()
        assert (out["mask"][mask == IGNORE_INDEX] == IGNORE_INDEX).all()


@pytest.mark.parametrize("level", ["none", "light", "default", "strong"])
def test_pipeline_outputs_training_tiles(level):
    size = read_size(64, level)
    rgb = np.full((size, size, 3), 200, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    out = build_augmentation(64, level, seed=0)(image=rgb, mask=mask)
    assert out["image"].shape == (64, 64, 3) and out["mask"].shape == (64, 64)
    assert set(np.unique(out["mask"])) <= {0, IGNORE_INDEX}


def test_loss_ignores_ignore_pixels():
    logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), IGNORE_INDEX, dtype=torch.uint8)
    assert dice_ce_loss(logits, target).item() == 0.0
    target[0, :2] = 1
    target[0, 2:] = 0
    good = torch.zeros(1, 2, 4, 4)
    good[0, 1, :2] = 8
    good[0, 0, 2:] = 8
    assert dice_ce_loss(good, target) < dice_ce_loss(-good, target)


def test_energy_gate_maximises_f1_and_reports_auroc():
    energies = [5.0, 4.8, 4.5, 4.4, 1.0, 1.2, 4.6]
    matched = [True, True, True, True, False, False, False]
    gate = energy_gate(energies, matched, n_true=5)
    assert gate["cutoff"] == pytest.approx((1.2 + 4.4) / 2)
    assert gate["f1_gated"] > gate["f1_all"]
    assert gate["auroc"] == pytest.approx(10 / 12, abs=1e-4)
    assert gate["true_energy"]["count"] == 4 and gate["false_energy"]["count"] == 3
    # objects at or above the cutoff are kept
    assert all(e >= gate["cutoff"] for e, m in zip(energies, matched) if m)


def test_energy_gate_keeps_everything_when_nothing_helps():
    gate = energy_gate([3.0, 2.0], [True, True], n_true=3)
    assert gate["cutoff"] == 2.0 and gate["auroc"] is None and gate["f1_gated"] == gate["f1_all"]
    assert energy_gate([], []) is None


def test_cross_validated_gate_pools_fold_objects():
    from hubseg.training.evaluate import EvaluationResult, cross_validated_gate

    # two fold models with different energy scales, each perfectly separating TP from FP
    fold_a = EvaluationResult(tp=2, fp=1, fn=0, energies=[2.0, 2.2, 1.0], matched=[True, True, False])
    fold_b = EvaluationResult(tp=2, fp=1, fn=1, energies=[4.0, 4.4, 3.0], matched=[True, True, False])
    gate = cross_validated_gate([fold_a, fold_b])
    assert [g["auroc"] for g in gate["per_fold"]] == [1.0, 1.0] and gate["auroc"] == 1.0
    assert [g["cutoff"] for g in gate["per_fold"]] == [1.5, 3.5]
    assert gate["auroc_pooled"] == pytest.approx(6 / 8)  # pooling mixes the two energy scales
    # pooled energies 1.0F 2.0T 2.2T 3.0F 4.0T 4.4T, 5 true objects: dropping only 1.0 is best
    assert gate["cutoff"] == pytest.approx(1.5)
    assert gate["f1_all"] == pytest.approx(8 / 11, abs=1e-4)
    assert gate["f1_gated"] == pytest.approx(8 / 10, abs=1e-4)
    assert gate["precision_gated"] == pytest.approx(0.8) and gate["recall_gated"] == pytest.approx(0.8)
    assert cross_validated_gate([EvaluationResult()]) is None


def test_energy_reference_measures_true_objects_only():
    from hubseg.gating import energy_reference
    from hubseg.training.evaluate import EvaluationResult

    result = EvaluationResult(tp=4, fp=1, energies=[1.0, 2.0, 3.0, 4.0, 100.0], matched=[True, True, True, True, False],
                              images=2)
    reference = energy_reference(result)
    assert reference["median"] == pytest.approx(2.5)
    assert reference["scale"] == pytest.approx(1.5)  # IQR of 1, 2, 3, 4
    assert reference["objects"] == 4 and reference["images"] == 2
    # near-constant energies: the scale is floored so standardised values stay finite and meaningful
    flat = energy_reference(EvaluationResult(energies=[2.0, 2.0], matched=[True, True]))
    assert flat["scale"] == pytest.approx(0.1)
    assert energy_reference(EvaluationResult(energies=[1.0], matched=[False])) is None


def test_standardized_gate_transfers_between_energy_scales():
    from hubseg.training.evaluate import EvaluationResult, cross_validated_gate, standardized_gate

    # Two fold models on different energy scales (B = 2 × A + 10). Raw pooling cannot find one cut-off
    # that separates both; in each model's own units the false objects sit at the same place.
    fold_a = EvaluationResult(tp=3, fp=2, fn=0, energies=[2.0, 2.5, 3.0, 1.0, 0.8], matched=[True, True, True, False, False])
    fold_b = EvaluationResult(tp=3, fp=2, fn=0, energies=[14.0, 15.0, 16.0, 12.0, 11.6], matched=[True, True, True, False, False])
    ref_a = {"median": 2.5, "scale": 1.0}
    ref_b = {"median": 15.0, "scale": 2.0}
    raw = cross_validated_gate([fold_a, fold_b])
    assert raw["f1_gated"] < 1.0  # B's false objects sit above A's true ones
    shipped_reference = {"median": 40.0, "scale": 4.0}
    gate = standardized_gate([fold_a, fold_b], [ref_a, ref_b], shipped_reference)
    assert gate["f1_gated"] == pytest.approx(1.0) and gate["auroc_pooled"] == pytest.approx(1.0)
    # z between the false (-1.5, -1.7) and true (-0.5 ..) objects → raw cut-off on the shipped model's scale
    assert gate["z_cutoff"] == pytest.approx(-1.0)
    assert gate["cutoff"] == pytest.approx(40.0 - 1.0 * 4.0)
    assert [g["cutoff"] for g in gate["per_fold"]] == [pytest.approx(1.5), pytest.approx(13.0)]
    assert gate["reference"] == shipped_reference
    assert standardized_gate([fold_a], [None], shipped_reference) is None
    assert standardized_gate([fold_a], [ref_a], None) is None


def test_validation_ignores_true_slivers_below_the_detection_minimum_area(tmp_path):
    """Validation scores as `hubseg evaluate` does: a glomerulus sliver cut by the image border that is
    smaller than the minimum object area is neither a hit nor a miss."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.models.testing import make_threshold_model
    from hubseg.pipeline import DetectionOptions
    from hubseg.training.evaluate import evaluate_image
    from hubseg.training.sources import TrainingImage

    make_threshold_model(tmp_path, pixel_size_um=2.0, tile_size=64)
    model = ModelRegistry(tmp_path).load("threshold-test-v1", device="cpu")
    yy, xx = np.mgrid[0:128, 0:128]
    disk = (xx - 64) ** 2 + (yy - 64) ** 2 <= 20**2  # 1257 px = 5027 µm²: dark, found
    sliver = (xx < 6) & (yy > 10) & (yy < 20)  # 54 px = 216 µm² at the border, pale: not found
    rgb = np.full((128, 128, 3), 235, np.uint8)
    rgb[disk] = (60, 40, 90)
    image = TrainingImage(name="t", label=(disk | sliver).astype(np.uint8), pixel_size_um=2.0, rgb=rgb)

    default = evaluate_image(model, image)  # minimum area 1000 µm² = 250 px
    assert (default.tp, default.fp, default.fn) == (1, 0, 0)
    small = evaluate_image(model, image, DetectionOptions(use_energy_gate=False, tissue_detection=False, min_area_um2=100))
    assert (small.tp, small.fp, small.fn) == (1, 0, 1)  # 25 px: now the sliver counts, and is missed
