#!/usr/bin/env python
"""Self-training benchmark: does ``hubseg adapt`` help on a lab the model has not seen, and what does it cost?

Four parts:

``lab`` — a simulated new lab: the AIDPATH PAS tiles (``../shared/data/pas-glomeruli-aidpath``) with ONE fixed
HED stain shift for the whole lab (:func:`hubseg.stain.hed_shift`, strength ``--strength``, draw ``--lab-seed``),
split by tile: every other tile is an *unlabelled* lab tile for self-training, the rest are the lab's
evaluation tiles. Rows: v0 (the teacher as shipped), self-training alone (no labels), and self-training +
ONE corrected tile (an unlabelled tile with its true mask as real labels), each over ``--seeds``; mean ± sd.
The score is the **confident-class F1**: objects the energy gate keeps (not ``uncertain``), matched at
IoU > 0.5 as ``hubseg evaluate`` scores (``Score`` of ``bench_robustness.py``). Caveat: the shipped model saw
these tiles *unshifted* in training; what is measured is adaptation to the stain shift.

``hubmap`` — a run on the real, unlabelled HuBMAP PAS tiles (``../shared/data/pas-hubmap2023-unlabelled``,
CC BY-NC 4.0: development only; the student is written to a temporary data directory and deleted, it never
ships): pseudo-label counts, the fraction of tissue ignored, and minutes per phase.

``transductive`` — where the teacher meets enough objects: the same shifted AIDPATH lab, but ALL its tiles are the
unlabelled input and the model is scored on those same tiles (transductive, as a lab adapting on the slides it
then detects). Rows: v0, and the adapted model per seed with its pseudo-label counts and safety verdict;
mean ± sd over ``--seeds``.

``timing`` — the cost of the teacher-pass cap: one mosaic "slide" of HuBMAP tiles (``--mosaic`` × ``--mosaic``
tiles of 512 px at 0.5 µm/px, not a real section: only for time) goes through ``self_train`` with a short
training; per teacher tile (teacher pass, calibration, safety check) and per training iteration are measured,
and a biopsy (one slide: ``tiles_per_slide`` teacher tiles) and a 40-slide cohort (``max_tiles`` teacher tiles)
with 800 iterations are extrapolated from them.

Small runs (shared 2-core machine): see docs/models.md, "Self-training". Full runs:

    nice .venv/bin/python scripts/bench_selftrain.py lab --seeds 0 1 2 --iterations 800 --threads 2
    nice .venv/bin/python scripts/bench_selftrain.py hubmap --limit 0 --iterations 800 --threads 2
    nice .venv/bin/python scripts/bench_selftrain.py transductive --seeds 0 1 2 --iterations 800 --threads 2
    nice .venv/bin/python scripts/bench_selftrain.py timing --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from scripts import common
    from scripts.bench_robustness import Score
except ImportError:  # run as `python scripts/bench_selftrain.py`: this folder is sys.path[0], the repository root is not
    import common

REPO_ROOT = common.REPO_ROOT

AIDPATH = REPO_ROOT.parent / "shared" / "data" / "pas-glomeruli-aidpath"
AIDPATH_PIXEL_SIZE_UM = 0.4942
HUBMAP = REPO_ROOT.parent / "shared" / "data" / "pas-hubmap2023-unlabelled"
HUBMAP_PIXEL_SIZE_UM = 0.5


def _config(args, seed: int):
    from hubseg.training.selftrain import SelfTrainConfig
    from hubseg.training.trainer import TrainConfig

    return SelfTrainConfig(iterations=args.iterations, rounds=args.rounds,
                           train=TrainConfig(lr=5e-4, random_tiles=1.0, seed=seed, device="cpu", num_threads=args.threads))


def score_model(model, tiles) -> dict:
    """Confident-class (gated) and all-object figures over (name, rgb, mask) tiles."""

    from hubseg.metrics import label_instances
    from hubseg.pipeline import DetectionOptions

    options = DetectionOptions()
    total = Score()
    for _name, rgb, truth in tiles:
        min_pixels = max(1, int(round(options.min_area_um2 / AIDPATH_PIXEL_SIZE_UM**2)))
        result = common.detect_array(rgb, AIDPATH_PIXEL_SIZE_UM, model, options)
        score = Score()
        score.add(result.objects, truth, label_instances(truth, min_pixels=min_pixels), 1.0)
        total.merge(score)
    summary = total.summary(gate_present=True)
    return {"f1_confident": summary["gated"]["f1"], "precision_confident": summary["gated"]["precision"],
            "recall_confident": summary["gated"]["recall"], "f1_all": summary["f1"], "dice": round(summary["dice"], 4),
            "objects": summary["objects"], "uncertain": summary["uncertain"]}


def lab(args) -> dict:
    import torch


    from hubseg.models.registry import ModelRegistry
    from hubseg.stain import hed_shift
    from hubseg.training.selftrain import self_train
    from hubseg.training.sources import ImageFolderSource

    torch.set_num_threads(args.threads)
    tiles = common.read_pairs(AIDPATH, None, None)
    shifted = [(name, hed_shift(rgb, args.strength, rng=args.lab_seed), mask) for name, rgb, mask in tiles]
    unlabelled, evaluation = shifted[0::2], shifted[1::2]
    if args.unlabelled:
        unlabelled = unlabelled[: args.unlabelled]
    rows: dict[str, list[dict]] = {"v0": [], "self-training": [], "self-training + 1 corrected tile": []}
    with tempfile.TemporaryDirectory(prefix="bench-selftrain-") as tmp:
        tmp = Path(tmp)
        (tmp / "unlabelled").mkdir()
        for name, rgb, _ in unlabelled:
            Image.fromarray(rgb).save(tmp / "unlabelled" / Path(name).with_suffix(".png").name)
        corrected = max(unlabelled, key=lambda t: int(t[2].sum()))  # the tile with the most glomerulus area
        for sub in ("images", "masks"):
            (tmp / "corrected" / sub).mkdir(parents=True)
        stem = Path(corrected[0]).stem
        Image.fromarray(corrected[1]).save(tmp / "corrected" / "images" / f"{stem}.png")
        Image.fromarray((corrected[2] > 0).astype(np.uint8) * 255).save(tmp / "corrected" / "masks" / f"{stem}.png")
        registry = ModelRegistry(tmp / "data")
        teacher = registry.load(args.model, device="cpu")
        started = time.perf_counter()
        rows["v0"].append({**score_model(teacher, evaluation), "minutes": 0.0})
        print(f"v0 {args.model}: {rows['v0'][0]}", file=sys.stderr, flush=True)
        images = [(p, AIDPATH_PIXEL_SIZE_UM) for p in sorted((tmp / "unlabelled").iterdir())]
        for seed in args.seeds:
            for row, labels in (("self-training", []),
                                ("self-training + 1 corrected tile",
                                 [ImageFolderSource(tmp / "corrected", AIDPATH_PIXEL_SIZE_UM)])):
                t0 = time.perf_counter()
                cards = self_train(images, registry, _config(args, seed), base_model=teacher.card.name,
                                   label_sources=labels)
                record = cards[-1].provenance["self_training"]
                student = registry.load(cards[-1].name, device="cpu")
                result = {**score_model(student, evaluation), "seed": seed,
                          "minutes": round((time.perf_counter() - t0) / 60, 2),
                          "pseudo_positive_objects": record["pseudo_positive_objects"],
                          "uncertain_objects": record["uncertain_objects"],
                          "ignored_tissue_fraction": record["ignored_tissue_fraction"],
                          "iterations": cards[-1].provenance["iterations"]}
                rows[row].append(result)
                print(f"{row} seed {seed}: {result}", file=sys.stderr, flush=True)
    table = {}
    for row, results in rows.items():
        f1 = [r["f1_confident"] for r in results]
        table[row] = {"runs": len(results), "f1_confident_mean": round(statistics.mean(f1), 4),
                      "f1_confident_sd": round(statistics.stdev(f1), 4) if len(f1) > 1 else 0.0,
                      "f1_all_mean": round(statistics.mean(r["f1_all"] for r in results), 4),
                      "dice_mean": round(statistics.mean(r["dice"] for r in results), 4), "results": results}
    return {"part": "lab", "strength": args.strength, "lab_seed": args.lab_seed, "model": args.model,
            "unlabelled_tiles": len(unlabelled), "evaluation_tiles": len(evaluation), "iterations": args.iterations,
            "seeds": args.seeds, "threads": args.threads, "minutes_total": round((time.perf_counter() - started) / 60, 2),
            "rows": table}


def hubmap(args) -> dict:
    import torch

    from hubseg.models.registry import ModelRegistry
    from hubseg.training.selftrain import expand_images, self_train

    torch.set_num_threads(args.threads)
    if not (HUBMAP / "images").is_dir():
        raise SystemExit(f"HuBMAP tiles not found at {HUBMAP}")
    images = expand_images([str(HUBMAP / "images")])
    if args.limit:
        images = images[: args.limit]
    phases: dict[str, float] = {}
    state = {"phase": None, "t": time.perf_counter()}

    def progress(done, total, message):
        phase = message.split(":")[0].split(" ", 2)[-1]
        if phase != state["phase"]:
            now = time.perf_counter()
            if state["phase"]:
                phases[state["phase"]] = phases.get(state["phase"], 0.0) + now - state["t"]
            state.update(phase=phase, t=now)

    with tempfile.TemporaryDirectory(prefix="bench-selftrain-hubmap-") as tmp:  # CC BY-NC: the student is deleted
        registry = ModelRegistry(Path(tmp) / "data")
        started = time.perf_counter()
        cards = self_train([(p, HUBMAP_PIXEL_SIZE_UM) for p in images], registry, _config(args, args.seeds[0]),
                           base_model=args.model, progress=progress)
        phases[state["phase"]] = phases.get(state["phase"], 0.0) + time.perf_counter() - state["t"]
        card = cards[-1]
        record = card.provenance["self_training"]
        per_image = next(d for d in card.provenance["data"] if d["kind"] == "pseudo-labels")["images"]
        return {"part": "hubmap", "tiles": len(images), "model": args.model, "iterations": card.provenance["iterations"],
                "epochs": card.provenance["epochs"], "threads": args.threads,
                "pseudo_positive_objects": record["pseudo_positive_objects"],
                "uncertain_objects": record["uncertain_objects"],
                "tiles_with_pseudo_positives": sum(1 for i in per_image if i["confident_objects"]),
                "tiles_with_uncertain_objects": sum(1 for i in per_image if i["uncertain_objects"]),
                "ignored_tissue_fraction": record["ignored_tissue_fraction"],
                "student_gate_cutoff": (card.energy_gate or {}).get("cutoff"),
                "teacher_gate_cutoff": record["rules"]["energy_cutoff"],
                "agreement_with_pseudo_labels": record["agreement_with_pseudo_labels"],
                "minutes": {k: round(v / 60, 2) for k, v in phases.items()},
                "minutes_total": round((time.perf_counter() - started) / 60, 2)}


def _spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 4),
            "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0, "n": len(values)}


def transductive(args) -> dict:
    """All shifted lab tiles are the unlabelled input and the evaluation set (the lab adapts on what it detects)."""
    import torch

    from bench_robustness import read_pairs

    from hubseg.models.registry import ModelRegistry
    from hubseg.stain import hed_shift
    from hubseg.training.selftrain import self_train

    torch.set_num_threads(args.threads)
    tiles = [(n, hed_shift(rgb, args.strength, rng=args.lab_seed), m) for n, rgb, m in read_pairs(AIDPATH, None, None)]
    with tempfile.TemporaryDirectory(prefix="bench-selftrain-td-") as tmp:
        tmp = Path(tmp)
        (tmp / "unlabelled").mkdir()
        for name, rgb, _ in tiles:
            Image.fromarray(rgb).save(tmp / "unlabelled" / Path(name).with_suffix(".png").name)
        registry = ModelRegistry(tmp / "data")
        teacher = registry.load(args.model, device="cpu")
        started = time.perf_counter()
        v0 = score_model(teacher, tiles)
        print(f"v0: {v0}", file=sys.stderr, flush=True)
        images = [(p, AIDPATH_PIXEL_SIZE_UM) for p in sorted((tmp / "unlabelled").iterdir())]
        runs = []
        for seed in args.seeds:
            t0, cpu0 = time.perf_counter(), time.process_time()
            card = self_train(images, registry, _config(args, seed), base_model=teacher.card.name)[-1]
            record = card.provenance["self_training"]
            run = {**score_model(registry.load(card.name, device="cpu"), tiles), "seed": seed,
                   "minutes": round((time.perf_counter() - t0) / 60, 2),
                   "cpu_minutes": round((time.process_time() - cpu0) / 60, 2),
                   "pseudo_positive_objects": record["pseudo_positive_objects"],
                   "uncertain_objects": record["uncertain_objects"],
                   "ignored_tissue_fraction": record["ignored_tissue_fraction"],
                   "held_back_tiles": record["teacher_tiles"]["held_back"], "safety": record["safety"]}
            runs.append(run)
            print(f"seed {seed}: {run}", file=sys.stderr, flush=True)
    gains = [r["f1_confident"] - v0["f1_confident"] for r in runs]
    return {"part": "transductive", "strength": args.strength, "lab_seed": args.lab_seed, "model": args.model,
            "tiles": len(tiles), "iterations": args.iterations, "seeds": args.seeds, "threads": args.threads,
            "v0": v0, "adapted_f1_confident": _spread([r["f1_confident"] for r in runs]),
            "adapted_f1_all": _spread([r["f1_all"] for r in runs]), "gain_f1_confident": _spread(gains),
            "verdicts": [r["safety"]["verdict"] for r in runs], "runs": runs,
            "minutes_total": round((time.perf_counter() - started) / 60, 2)}


def _mosaic(path: Path, side: int) -> Path:
    """``side × side`` HuBMAP tiles (512 px, 0.5 µm/px) in one image: a slide-sized input for timing only."""
    files = sorted((HUBMAP / "images").iterdir())[: side * side]
    if len(files) < side * side:
        raise SystemExit(f"need {side * side} HuBMAP tiles, found {len(files)}")
    canvas = np.empty((side * 512, side * 512, 3), np.uint8)
    for index, file in enumerate(files):
        row, col = divmod(index, side)
        canvas[row * 512:(row + 1) * 512, col * 512:(col + 1) * 512] = np.asarray(Image.open(file).convert("RGB"))[:512, :512]
    Image.fromarray(canvas).save(path)
    return path


def timing(args) -> dict:
    """Per-teacher-tile and per-iteration costs, measured on a mosaic slide; a biopsy and a 40-slide cohort
    extrapolated from them."""
    import torch

    from hubseg.models.registry import ModelRegistry
    from hubseg.training.adapt_report import parse_progress
    from hubseg.training.selftrain import self_train
    from hubseg.training.teacher_tiles import DEFAULT_MAX_TEACHER_TILES, DEFAULT_TILES_PER_SLIDE

    torch.set_num_threads(args.threads)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # process CPU seconds (all threads): the shared machine's load inflates wall time
    state = {"phase": None, "t": time.perf_counter(), "c": time.process_time()}

    def close_phase():
        if state["phase"]:
            seconds[state["phase"]] = seconds.get(state["phase"], 0.0) + time.perf_counter() - state["t"]
            cpu[state["phase"]] = cpu.get(state["phase"], 0.0) + time.process_time() - state["c"]

    def progress(done, total, message):
        parsed = parse_progress(message)
        phase = parsed["phase"] if parsed else "other"
        if phase == "calibrating" and "safety" in message:
            phase = "safety"
        if phase != state["phase"]:
            close_phase()
            state.update(phase=phase, t=time.perf_counter(), c=time.process_time())

    with tempfile.TemporaryDirectory(prefix="bench-selftrain-timing-") as tmp:  # CC BY-NC: nothing is kept
        slide = _mosaic(Path(tmp) / "mosaic.png", args.mosaic)
        registry = ModelRegistry(Path(tmp) / "data")
        config = _config(args, args.seeds[0])
        config.cap = type(config.cap)(per_slide=args.tiles_per_slide, max_total=args.tiles_per_slide)
        card = self_train([(slide, HUBMAP_PIXEL_SIZE_UM)], registry, config, base_model=args.model, progress=progress)[-1]
        close_phase()
    record = card.provenance["self_training"]
    tiles, held = record["teacher_tiles"]["tiles"], record["teacher_tiles"]["held_back"]
    iterations = card.provenance.get("iterations") or args.iterations
    def per(times: dict[str, float]) -> dict[str, float]:
        return {"teacher_s_per_tile": times.get("teacher", 0) / tiles,
                "calibration_s_per_tile": times.get("calibrating", 0) / max(1, tiles - held),
                "safety_s_per_held_back_tile": times.get("safety", 0) / max(1, held),
                "training_s_per_iteration": times.get("training", 0) / max(1, iterations)}

    def estimate(teacher_tiles: int, rates: dict[str, float]) -> float:
        held_back = teacher_tiles // 5
        return round((teacher_tiles * rates["teacher_s_per_tile"] + (teacher_tiles - held_back) * rates["calibration_s_per_tile"]
                      + held_back * rates["safety_s_per_held_back_tile"] + 800 * rates["training_s_per_iteration"]) / 60, 1)

    wall, busy = per(seconds), per(cpu)
    cases = {f"biopsy ({DEFAULT_TILES_PER_SLIDE} teacher tiles, 800 iterations)": DEFAULT_TILES_PER_SLIDE,
             f"40-slide cohort ({DEFAULT_MAX_TEACHER_TILES} teacher tiles, 800 iterations)": DEFAULT_MAX_TEACHER_TILES}

    return {"part": "timing", "model": args.model, "threads": args.threads, "mosaic_tiles": args.mosaic ** 2,
            "teacher_tiles": tiles, "held_back": held, "iterations": iterations,
            "wall_seconds": {k: round(v, 1) for k, v in seconds.items()},
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "per_wall": {k: round(v, 3) for k, v in wall.items()}, "per_cpu": {k: round(v, 3) for k, v in busy.items()},
            "pseudo_positive_objects": record["pseudo_positive_objects"], "safety": record["safety"]["verdict"],
            "estimate_wall_minutes": {name: estimate(n, wall) for name, n in cases.items()},
            "estimate_cpu_minutes": {name: estimate(n, busy) for name, n in cases.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("lab", "hubmap", "transductive", "timing"))
    parser.add_argument("--model", default="hubseg-pas-glomeruli-v1", help="teacher (v0)")
    parser.add_argument("--strength", type=float, default=0.3, help="HED shift of the simulated lab")
    parser.add_argument("--lab-seed", type=int, default=1, help="the lab's one HED draw")
    parser.add_argument("--unlabelled", type=int, default=0, help="use only the first N unlabelled lab tiles (0: all 12)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=800, help="training iterations per round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=40, help="hubmap: first N tiles (0: all 495)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mosaic", type=int, default=12, help="timing: the mosaic slide is N × N HuBMAP tiles")
    parser.add_argument("--tiles-per-slide", type=int, default=16, help="timing: teacher tiles of the mosaic slide")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = {"lab": lab, "hubmap": hubmap, "transductive": transductive, "timing": timing}[args.part](args)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    if report["part"] == "lab":
        print(f"simulated lab: HED {report['strength']} (draw {report['lab_seed']}), {report['unlabelled_tiles']} unlabelled "
              f"/ {report['evaluation_tiles']} evaluation tiles, {report['iterations']} iterations, seeds {report['seeds']}")
        print("| row | runs | confident-class F1 (mean ± sd) | F1 all objects | Dice |")
        print("|---|---|---|---|---|")
        for row, r in report["rows"].items():
            print(f"| {row} | {r['runs']} | {r['f1_confident_mean']:.3f} ± {r['f1_confident_sd']:.3f} | "
                  f"{r['f1_all_mean']:.3f} | {r['dice_mean']:.3f} |")
    else:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
