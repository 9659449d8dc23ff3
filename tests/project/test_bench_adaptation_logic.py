"""scripts/bench_adaptation.py's logic on tiny inputs: the new lab's shifts, the split, the simulated reviewer's
label sets, scoring, review efficiency, mean ± spread and the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, box

from scripts import bench_adaptation


@pytest.fixture(scope="module")
def bench():
    return bench_adaptation


def _tissue(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), (230, 190, 220), np.uint8)
    rgb[30:80, 40:100] = (120, 60, 150)
    return np.clip(rgb.astype(int) + rng.integers(-8, 9, rgb.shape), 0, 255).astype(np.uint8)


def test_lab_shift_composes_stain_blur_scale_and_jpeg(bench):
    rgb = _tissue()
    shifted = bench.shift_tile(rgb, 0.5, "t1", ("hed-0.2", "blur-1.5", "scale-0.25", "jpeg-50"), seed=0)
    assert shifted.rgb.shape == (240, 320, 3) and shifted.rgb.dtype == np.uint8
    assert shifted.pixel_size_um == pytest.approx(0.25)
    assert shifted.to_original == pytest.approx(0.5)  # shifted px × 0.5 = source px
    # The stain really changed (mean colour of the dark block moved) and the result is deterministic per seed.
    again = bench.shift_tile(rgb, 0.5, "t1", ("hed-0.2", "blur-1.5", "scale-0.25", "jpeg-50"), seed=0)
    assert np.array_equal(shifted.rgb, again.rgb)
    plain = bench.shift_tile(rgb, 0.5, "t1", ("scale-0.25",), seed=0)
    assert np.abs(shifted.rgb[80:140, 100:180].astype(int).mean((0, 1)) - plain.rgb[80:140, 100:180].astype(int).mean((0, 1))).max() > 3
    coarse = bench.shift_tile(rgb, 0.5, "t1", ("scale-3.0",), seed=0)
    assert coarse.rgb.shape[:2] == (20, 27) and coarse.to_original == pytest.approx(160 / 27)


def test_make_lab_writes_images_and_moves_the_truth_into_the_shifted_frame(bench, tmp_path):
    from PIL import Image

    tile = bench.hitl.Tile("t1", tmp_path / "src.png", _tissue(), [box(40, 30, 100, 80)])
    lab, pixel_size = bench.make_lab([tile], ("scale-0.25",), seed=0, folder=tmp_path / "lab")
    factor = bench.SOURCE_PIXEL_SIZE_UM / pixel_size
    assert pixel_size == pytest.approx(0.25, rel=0.01)
    (shifted,) = lab
    assert np.asarray(Image.open(shifted.image_path)).shape == shifted.rgb.shape
    assert shifted.truth[0].bounds == pytest.approx((40 * factor, 30 * factor, 100 * factor, 80 * factor), rel=0.01)


def test_split_gives_half_to_v0_and_quarters_to_review_and_test(bench, tmp_path):
    tiles = [bench.hitl.Tile(f"{i:02d}", tmp_path / f"{i}.png", np.zeros((4, 4, 3), np.uint8), [box(0, 0, 1, 1)] * (i % 4))
             for i in range(24)]
    parts = bench.split_seed(tiles, seed=3)
    assert [len(parts[k]) for k in ("v0", "review", "test")] == [12, 6, 6]
    names = [t.name for part in parts.values() for t in part]
    assert sorted(names) == sorted(t.name for t in tiles)
    assert abs(sum(len(t.truth) for t in parts["review"]) - sum(len(t.truth) for t in parts["test"])) <= 3
    assert bench.split_seed(tiles, seed=3) == parts and bench.split_seed(tiles, seed=4) != parts


def _proposal(bench, tile, index, energy, iou, truth_index, geometry, score=None, uncertain=False):
    return bench.LabProposal(tile, index, geometry, energy, 0.9, iou, truth_index if iou > 0 else None, score, uncertain)


def test_whole_tile_review_decides_everything_and_draws_every_miss(bench, tmp_path):
    from hubseg.labels import validate_label_set

    truth = [Point(100, 100).buffer(40), Point(300, 100).buffer(40), Point(500, 250).buffer(40)]
    tile = bench.hitl.Tile("t", tmp_path / "t.png", np.zeros((400, 700, 3), np.uint8), truth)
    proposals = [_proposal(bench, "t", 0, 3.0, 0.95, 0, truth[0]), _proposal(bench, "t", 1, 1.0, 0.0, None, box(600, 300, 650, 350))]
    outcome = bench.hitl.simulate_review({"t": tile}, proposals, [], 0, "v0", pixel_size_um=0.25, whole_tiles=["t"])
    assert (outcome.accepted, outcome.rejected, outcome.drawn) == (1, 1, 2)
    (name, label_set), = outcome.label_sets
    parsed = validate_label_set(json.loads(json.dumps(label_set)))
    assert parsed.pixel_size_um == 0.25
    assert len(parsed.positives) == 3 and len(parsed.negatives) == 1
    assert parsed.region_union.area == pytest.approx(400 * 700)


def _scored_case(bench, with_scores):
    truth = [Point(100 + 200 * i, 100).buffer(40) for i in range(4)]
    tile = bench.hitl.Tile("t", Path("t.png"), np.zeros((300, 900, 3), np.uint8), truth)
    score = (lambda v: v) if with_scores else (lambda v: None)
    proposals = [
        _proposal(bench, "t", 0, 4.0, 0.9, 0, truth[0], score(0.9)),
        _proposal(bench, "t", 1, 3.5, 0.9, 1, truth[1], score(0.8)),
        _proposal(bench, "t", 2, 1.0, 0.9, 2, truth[2], score(0.7), uncertain=True),  # a true object flagged uncertain
        _proposal(bench, "t", 3, 2.0, 0.0, None, box(700, 200, 760, 260), score(0.1), uncertain=True),  # false, flagged
        _proposal(bench, "t", 4, 3.0, 0.0, None, box(800, 200, 860, 260), score(0.2)),  # false, confident
    ]

    class Obj:
        def __init__(self, p):
            self.geometry, self.energy_gate, self.extra = p.geometry, 2.5, {}

    objects = {"t": [Obj(p) for p in proposals]}
    return proposals, objects, [tile]


def test_scores_f1_all_and_confident_uncertain_fraction_and_aurocs(bench):
    proposals, objects, tiles = _scored_case(bench, with_scores=True)
    s = bench.score_lab(proposals, objects, tiles, pixel_size_um=1.0, model_pixel_size_um=1.0, seed=0)
    assert (s["all"]["tp"], s["all"]["fp"], s["all"]["fn"]) == (3, 2, 1)
    assert (s["confident"]["tp"], s["confident"]["fp"], s["confident"]["fn"]) == (2, 1, 2)
    assert s["uncertain_fraction"] == pytest.approx(2 / 5)
    assert s["auroc_review_score"] == 1.0  # every true object scores above every false one
    assert s["auroc_energy"] == pytest.approx(4 / 6)  # the true object at energy 1.0 ranks below both false ones
    assert 0.5 < s["dice"] < 1.0
    # Review efficiency: 2 errors of 5; the first 20 % (1 object) by review score is an error, by energy (1.0) not.
    eff = s["efficiency"]
    assert eff["errors"] == 2
    assert eff["20%"]["review_score"] == 0.5 and eff["20%"]["energy"] == 0.0
    assert eff["20%"]["random"] == pytest.approx(0.2, abs=0.03)


def test_without_review_scores_the_score_columns_are_not_available(bench):
    proposals, objects, tiles = _scored_case(bench, with_scores=False)
    s = bench.score_lab(proposals, objects, tiles, 1.0, 1.0, seed=0)
    assert s["auroc_review_score"] is None and s["efficiency"]["10%"]["review_score"] is None
    assert bench.review_order(proposals)[1] == "energy"
    assert bench.review_order(_scored_case(bench, with_scores=True)[0]) == ([3, 4, 2, 1, 0], "review score")


def test_mean_spread_paired_deltas_and_one_table(bench):
    assert bench.mean_spread([0.5, 0.7, None]) == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.1414, abs=1e-3), "n": 2}
    assert bench.mean_spread([None]) is None
    clear = bench.paired_delta([0.8, 0.82, 0.81], [0.6, 0.61, 0.6])
    assert clear["mean"] == pytest.approx(0.2067, abs=1e-3) and not clear["within_noise"]
    assert bench.paired_delta([0.7, 0.5, 0.62], [0.6, 0.6, 0.6])["within_noise"]

    def scores(f1, score_auroc):
        proposals, objects, tiles = _scored_case(bench, with_scores=score_auroc)
        s = bench.score_lab(proposals, objects, tiles, 1.0, 1.0, seed=0)
        s["all"]["f1"] = f1
        return s

    runs = [{"lab": "lab-3um", "seed": seed, "models": [
        {"model": "v0", "cpu_minutes": 10.0, "scores": scores(0.5 + 0.01 * seed, True)},
        {"model": "v1 tile", "cpu_minutes": 2.0, "scores": scores(0.7 + 0.01 * seed, True)}]} for seed in range(3)]
    rows = bench.summarise(runs)
    assert [(r["lab"], r["model"]) for r in rows] == [("lab-3um", "v0"), ("lab-3um", "v1 tile")]
    assert rows[1]["delta"]["F1 all"]["mean"] == pytest.approx(0.2)
    table = bench.render({"setup": {"seeds": [0, 1, 2], "labs": ["lab-3um"], "epochs_v0": 40, "epochs_ft": 10, "quick": True},
                          "rows": rows, "seconds": 12.0})
    assert "| lab-3um | v1 tile | 0.71 ± 0.01 (+0.20) |" in table
    assert table.count("\n| lab-3um |") == 4  # two rows in the per-seed table and two in the pooled one


def test_table_from_pools_per_seed_json_files(bench, tmp_path, capsys):
    proposals, objects, tiles = _scored_case(bench, with_scores=False)
    files = []
    for seed in (0, 1):
        scores = bench.score_lab(proposals, objects, tiles, 1.0, 1.0, seed=seed)
        runs = [{"lab": "lab-40x", "seed": seed, "models": [{"model": "v0", "cpu_minutes": 4.0, "scores": scores}]}]
        report = {"setup": {"seeds": [seed], "labs": ["lab-40x"], "epochs_v0": 40, "epochs_ft": 10, "quick": True},
                  "partial": seed == 1, "runs": runs, "rows": bench.summarise(runs), "seconds": 5.0}
        files.append(tmp_path / f"s{seed}.json")
        files[-1].write_text(json.dumps(report, default=float))
    assert bench.main(["--table-from", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert "seeds 0 1" in out and "PARTIAL" in out
    assert "| lab-40x | v0 | 0.67 ± 0.00 | 0.57 ± 0.00 |" in out  # F1 of 3/2/1 and 2/1/2 (TP/FP/FN)


def test_fine_tune_recipe_options_and_self_training_rows_parse(bench, capsys):
    args = bench.parse_args(["--ft-option", "encoder_lr_factor=0.1", "--ft-option", "freeze_bn=true"])
    assert args.ft_overrides == {"encoder_lr_factor": 0.1, "freeze_bn": True}
    assert args.self_training == ["alone", "tile"] and args.st_iterations == 800  # hubseg adapt's default budget
    assert bench.parse_args(["--self-training"]).self_training == []
    for bad in ("epochs=3", "freeze_bn=maybe", "lr="):
        with pytest.raises(SystemExit):
            bench.parse_args(["--ft-option", bad])
        assert "--ft-option" in capsys.readouterr().err


def test_maintainers_protocol_best_cut_and_pooled_gate_table(bench):
    """tiles-K parses; each model is scored at the best single energy cut beside the gate, and the splits pool."""
    assert bench.parse_args(["--protocols", "tiles-2", "tile"]).protocols == ["tiles-2", "tile"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--protocols", "tiles-x"])
    proposals, objects, tiles = _scored_case(bench, with_scores=True)
    s = bench.score_lab(proposals, objects, tiles, 1.0, 1.0, seed=0)
    # true at energy 4.0, 3.5, 1.0, false at 3.0, 2.0, 4 glomeruli: keeping all (3/2/1) ties the cut at 3.5 (2/0/2)
    # at F1 2/3; a tie keeps everything (no cut)
    assert s["best_cut"]["f1"] == pytest.approx(2 / 3) and s["best_cut"]["cut"] is None and s["true_glomeruli"] == 4
    proposals[3].energy = 0.5  # the false object at 2.0 moves below the true one at 1.0: the cut at 1.0 wins
    moved = bench.score_lab(proposals, objects, tiles, 1.0, 1.0, seed=0)["best_cut"]
    assert (moved["tp"], moved["fp"], moved["fn"], moved["cut"]) == (3, 1, 1, 1.0)
    runs = [{"lab": "lab-3um", "seed": seed, "models": [
        {"model": "v1 tiles-2", "cpu_minutes": 1.0, "scores": s, "gate_rule": "carried (thin evidence)",
         "gate_evidence": [3, 1]}]} for seed in range(3)]
    [row] = bench.summarise(runs)
    pooled = row["pooled"]
    assert pooled["test_glomeruli"] == 12 and pooled["objects"] == 15
    assert pooled["flagged_share"] == pytest.approx(2 / 5)
    assert pooled["f1_confident"] == pytest.approx(s["confident"]["f1"], abs=1e-4)  # same counts three times
    assert pooled["gate_rules"] == ["carried (thin evidence) (3 true / 1 false)"]
    table = bench.render({"setup": {"seeds": [0, 1, 2], "labs": ["lab-3um"], "epochs_v0": 40, "epochs_ft": 10, "quick": True},
                          "rows": [row], "seconds": 1.0})
    assert "| lab-3um | v1 tiles-2 | 3 | 12 | 15 | 40 % |" in table
