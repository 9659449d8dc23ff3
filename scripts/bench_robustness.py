#!/usr/bin/env python
"""Robustness benchmark: the default model under stain, scale, JPEG and blur shifts, as ONE table.

On the AIDPATH PAS tiles (``../shared/data/pas-glomeruli-aidpath``, 0.4942 µm/px) every tile is shifted,
run through the public engine (``hubseg.slide.ArraySlide`` → ``hubseg.pipeline.detect``) and scored
against its mask with ``hubseg.metrics`` — instance P/R/F1 at IoU > 0.5 for all objects and for the
energy-gated ones (objects the gate marks uncertain are left out), pixel Dice, and the energy AUROC
(true-positive vs false-positive objects' mean energy). Shifts:

- ``hed-S``: stain shift in HED optical-density space (:func:`hubseg.stain.hed_shift`, strength S,
  a different seeded draw per tile);
- ``scale-P``: the tile resampled to P µm/px and passed with that pixel size, so the engine resamples it
  back to the model's operating pixel size (objects are mapped back to the original frame for scoring);
- ``jpeg-Q``: JPEG round trip at quality Q; ``blur-S``: Gaussian blur with σ = S level-0 pixels.

With ``--stain-norm macenko|reinhard`` (default macenko) every condition is also run after stain
normalisation of the (shifted) tile with :class:`hubseg.stain.StainNormalizer`, as extra columns.

Goals: F1 drop ≤ 0.05 under every shift, and gated F1 ≥ ungated F1 everywhere.
Whether the tiles are held out is read from the model card; otherwise the output says they were seen
in training. Run (about 5.5 min for 24 tiles × 15 detections on a busy 2-core CPU with the default model):

    nice .venv/bin/python scripts/bench_robustness.py            # table; --json for one JSON object
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

try:
    from scripts import common
except ImportError:  # run as `python scripts/bench_robustness.py`: this folder is sys.path[0], the repository root is not
    import common

REPO_ROOT, DEFAULT_DATASET, DATASET_PIXEL_SIZE_UM = common.REPO_ROOT, common.DEFAULT_DATASET, common.DATASET_PIXEL_SIZE_UM
DEFAULT_CONDITIONS = (
    "none", "hed-0.05", "hed-0.1", "hed-0.2", "hed-0.3",
    "scale-0.25", "scale-1.0", "scale-3.0", "jpeg-30", "blur-2",
)
F1_DROP_GOAL = 0.05


# --- scoring --------------------------------------------------------------------------------------------
class Score:
    """Accumulates one condition's counts over tiles (same definitions as ``hubseg evaluate``)."""

    def __init__(self):
        from hubseg.metrics import Counts

        self.all = Counts()
        self.gated = Counts()
        self.intersection = 0
        self.area = 0
        self.tp_energy: list[float] = []
        self.fp_energy: list[float] = []
        self.objects = 0
        self.uncertain = 0
        self.seconds = 0.0

    def add(self, objects, truth: np.ndarray, true_labels: np.ndarray, to_original: float) -> None:
        from hubseg.metrics import Counts

        matching, matched, pred_labels = common.match_objects(objects, true_labels, to_original)  # object k → k + 1
        n_true = int(matching.true_ids.size)
        self.all.add(Counts(matching.tp, len(objects) - matching.tp, n_true - matching.tp))
        kept = [k for k, o in enumerate(objects, start=1) if not o.uncertain]
        gated_tp = sum(1 for k in kept if k in matched)
        self.gated.add(Counts(gated_tp, len(kept) - gated_tp, n_true - gated_tp))
        for k, o in enumerate(objects, start=1):
            (self.tp_energy if k in matched else self.fp_energy).append(float(o.mean_energy))
        self.objects += len(objects)
        self.uncertain += len(objects) - len(kept)
        pred = pred_labels > 0
        self.intersection += int(np.logical_and(pred, truth).sum())
        self.area += int(pred.sum()) + int(truth.sum())

    def merge(self, other: "Score") -> None:
        self.all.add(other.all)
        self.gated.add(other.gated)
        self.intersection += other.intersection
        self.area += other.area
        self.tp_energy += other.tp_energy
        self.fp_energy += other.fp_energy
        self.objects += other.objects
        self.uncertain += other.uncertain
        self.seconds += other.seconds

    def summary(self, gate_present: bool) -> dict:
        from hubseg.metrics import auroc

        return {
            **self.all.summary(),
            "gated": self.gated.summary() if gate_present else None,
            "dice": 1.0 if self.area == 0 else 2.0 * self.intersection / self.area,
            "energy_auroc": auroc(self.tp_energy, self.fp_energy),
            "objects": self.objects,
            "uncertain": self.uncertain,
            "seconds": round(self.seconds, 2),
        }


# --- held-out tiles ---------------------------------------------------------------------------------------
def held_out_tiles(card, tile_names: list[str]) -> tuple[list[str], str]:
    """The tiles the loaded weights never saw in training, per the card; else all tiles with a warning.

    The card may list them as ``held_out_tiles`` / ``validation_tiles`` in ``provenance`` or ``metrics``
    (a list of file names or stems), or as ``metrics.validation.images`` (``hubseg train``'s validation split). Per-tile CV fold assignment alone does not make tiles held out for
    the shipped weights if those were retrained on all folds.
    """
    stems = {Path(n).stem: n for n in tile_names}
    for section_name in ("provenance", "metrics"):
        section = getattr(card, section_name, None) or {}
        for key in ("held_out_tiles", "validation_tiles", "heldout_tiles"):
            listed = section.get(key)
            if isinstance(listed, (list, tuple)) and listed:
                chosen = [stems[Path(str(n)).stem] for n in listed if Path(str(n)).stem in stems]
                if chosen:
                    return chosen, f"held out: {len(chosen)} tiles the weights never saw (card {section_name}.{key})"
    validation = (getattr(card, "metrics", None) or {}).get("validation")
    if isinstance(validation, dict) and isinstance(validation.get("images"), list):
        # hubseg train's validation split: never trained on, only used to pick the best epoch and the gate.
        chosen = [stems[Path(str(n)).stem] for n in validation["images"] if Path(str(n)).stem in stems]
        if chosen:
            return chosen, (f"held out: {len(chosen)} validation tiles of the model's training run (card "
                            "metrics.validation.images; used only to choose the epoch and the energy gate)")
    why = "the model card records no tiles held out from its weights"
    cross_validation = (getattr(card, "metrics", None) or {}).get("cross_validation")
    if isinstance(cross_validation, dict) and cross_validation.get("folds"):
        # Per-tile fold assignment exists, but it belongs to the fold models; the shipped weights are
        # the final model retrained on every tile (train_default.py), so no tile is held out from them.
        why = (f"the card's {len(cross_validation['folds'])}-fold CV assigns tiles to folds, but those figures "
               "are the fold models'; the shipped weights were retrained on all tiles")
    return list(tile_names), (
        f"NOT held out: all {len(tile_names)} tiles were seen in training ({why}) — absolute figures are "
        "optimistic; the change under each shift is the informative part"
    )


# --- held out via the card's CV fold models -----------------------------------------------------------------
def ensure_fold_models(card, args) -> dict[str, str]:
    """{tile stem: fold-model folder} for the card's k-fold CV.

    The shipped weights saw every tile, so truly held-out figures need the CV fold models. The ones
    ``train_default.py`` saved (``--fold-models``, its ``--cv-dir``) are used when their sha256 matches the
    card's ``metrics.cross_validation.folds[].weights_sha256``: they are the models the card's CV figures and
    energy gate come from. Missing ones are retrained with the card's recipe (``provenance.config``,
    ``hubseg.training.fit``, validated once after the last epoch) and cached under ``--fold-cache``, keyed by
    the shipped weights' sha256. Every fold model carries the card's gate at its own energy scale.
    """
    from hubseg.models.registry import ModelRegistry

    cross_validation = (card.metrics or {}).get("cross_validation") or {}
    folds = [f for f in cross_validation.get("folds") or [] if f.get("held_out")]
    config_dict = dict((card.provenance or {}).get("config") or {})
    if not folds or not config_dict:
        raise SystemExit(f"model {card.name} records no CV folds with held-out tiles or no training config in its "
                         "card (metrics.cross_validation.folds[].held_out, provenance.config); run without --held-out")
    saved = ModelRegistry(Path(args.fold_models).expanduser(), shipped_dir=Path(args.fold_models).expanduser() / "none")
    cache = Path(args.fold_cache).expanduser() / f"{card.name}-{card.weights_sha256[:12]}"
    registry = ModelRegistry(cache, shipped_dir=cache / "none")
    folders: dict[int, Path] = {}
    for fold in folds:
        name = f"{card.family}-fold{int(fold['fold'])}-v1"
        if fold.get("weights_sha256") and name in saved.names() and saved.card(name).weights_sha256 == fold["weights_sha256"]:
            folders[int(fold["fold"])] = saved.path(name)
        elif name in registry.names():
            folders[int(fold["fold"])] = registry.path(name)
    args.fold_models_source = "saved" if len(folders) == len(folds) and all(
        str(f).startswith(str(saved.data_dir)) for f in folders.values()) else "retrained"
    jobs = [(card.to_dict(), fold, len(folds), str(cache), args) for fold in folds if int(fold["fold"]) not in folders]
    if len(jobs) > 1 and args.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(args.workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_train_fold, jobs))
    else:
        for job in jobs:
            _train_fold(job)
    assignment: dict[str, str] = {}
    for fold in folds:
        folder = folders.get(int(fold["fold"])) or registry.path(f"{card.family}-fold{int(fold['fold'])}-v1")
        for stem in fold["held_out"]:
            assignment[Path(str(stem)).stem] = str(folder)
    return assignment


def _train_fold(job) -> str:
    """Train and cache one CV fold model (see :func:`ensure_fold_models`)."""
    import torch

    from hubseg.models.card import ModelCard
    from hubseg.models.registry import ModelRegistry
    from hubseg.gating import cutoff_for_reference, energy_reference
    from hubseg.training.evaluate import evaluate_images
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import TrainConfig, fit, prepare_model

    card_dict, fold, n_folds, cache, args = job
    card = ModelCard.from_dict(card_dict)
    config_dict = dict(card.provenance["config"])
    k, held_out = int(fold["fold"]), sorted(Path(str(n)).stem for n in fold["held_out"])
    name = f"{card.family}-fold{k}-v1"
    images = ImageFolderSource(args.dataset, args.pixel_size).load(card.pixel_size_um)
    fields = set(TrainConfig.__dataclass_fields__)
    config = TrainConfig(**{key: value for key, value in config_dict.items() if key in fields})
    config.val_images, config.device, config.num_threads, config.name = held_out, args.device, args.threads, None
    config.val_every = config.epochs  # the recipe's end point, as in the card's CV (no epoch picked on held-out tiles)
    module, fold_card, _ = prepare_model(config)
    train = [i for i in images if i.name not in held_out]
    val = [i for i in images if i.name in held_out]
    print(f"training fold model {k}/{n_folds} ({len(train)} tiles, {config.epochs} epochs; held out: "
          f"{', '.join(held_out)})", file=sys.stderr, flush=True)
    result = fit(config, train, val, module, fold_card,
                 progress=None if args.quiet else
                 lambda e, n, m: print(f"  fold {k}: {m}", file=sys.stderr, flush=True))
    fold_card = result.card
    fold_card.name = name
    gate = dict(card.energy_gate) if isinstance(card.energy_gate, dict) else None
    if gate and gate.get("z_cutoff") is not None:  # the shared gate at this model's own energy scale
        from hubseg.models.loaded import LoadedModel

        reference = energy_reference(evaluate_images(LoadedModel(fold_card, module, args.device), train))
        if reference:
            gate.update(reference=reference, cutoff=cutoff_for_reference(gate["z_cutoff"], reference))
    fold_card.energy_gate = gate
    fold_card.metrics = {"validation": {**result.validation.summary(), "images": held_out,
                                        "epoch": result.best_epoch}}
    fold_card.provenance = {"recipe": f"fold {k} of {card.name}'s CV, retrained by bench_robustness.py",
                            "config": config_dict, "parent_weights_sha256": card.weights_sha256,
                            "training_seconds": result.seconds}
    ModelRegistry(cache, shipped_dir=Path(cache) / "none").register(result.state_dict, fold_card, dtype=torch.float16)
    return name


# --- main -------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(args) -> None:
    """Load the model once per process (each process runs torch on ``args.threads`` threads)."""
    import torch

    from hubseg.models.registry import ModelRegistry
    from hubseg.pipeline import DetectionOptions
    from hubseg.stain import StainNormalizer

    torch.set_num_threads(args.threads)
    registry = ModelRegistry(args.data_dir)
    models = {None: registry.load(args.model, device=args.device)}
    for folder in sorted(set((args.fold_assignment or {}).values())):
        models[folder] = registry.load(folder, device=args.device)
    _WORKER.update(
        args=args,
        models=models,
        options=DetectionOptions(tta=args.tta),
        normalizer=StainNormalizer(args.stain_norm) if args.stain_norm != "none" else None,
        shifts={name: common.make_shift(name, args.seed)[1] for name in args.conditions},
    )


def normalised_conditions(args) -> list[str]:
    """Conditions that also get a stain-normalised run: all with --stain-norm-all, else baseline + stain shifts."""
    if args.stain_norm == "none":
        return []
    return [c for c in args.conditions if args.stain_norm_all or c == "none" or c.startswith("hed-")]


def _evaluate_tile(tile) -> tuple[str, dict]:
    """All conditions (and normalised variants) on one tile → {(condition, variant): Score}."""
    from hubseg.metrics import label_instances

    args, options = _WORKER["args"], _WORKER["options"]
    normalizer = _WORKER["normalizer"]
    normalise = set(normalised_conditions(args))
    tile_name, rgb, truth = tile
    model = _WORKER["models"][(args.fold_assignment or {}).get(Path(tile_name).stem)]
    min_pixels = max(1, int(round(options.min_area_um2 / args.pixel_size**2)))
    true_labels = label_instances(truth, min_pixels=min_pixels)
    scores = {}
    for condition in args.conditions:
        shifted = _WORKER["shifts"][condition](rgb, args.pixel_size, tile_name)
        for variant in ("raw", "normalised") if condition in normalise else ("raw",):
            t0 = time.perf_counter()
            image = normalizer(shifted.rgb) if variant == "normalised" else shifted.rgb
            result = common.detect_array(image, shifted.pixel_size_um, model, options)
            score = Score()
            score.seconds = time.perf_counter() - t0
            score.add(result.objects, truth, true_labels, shifted.to_original)
            scores[(condition, variant)] = score
    return tile_name, scores


def run_benchmark(args) -> dict:
    from hubseg.models.registry import ModelRegistry

    started = time.perf_counter()
    card = ModelRegistry(args.data_dir).card(args.model)
    gate_present = isinstance(card.energy_gate, dict) and card.energy_gate.get("cutoff") is not None
    descriptions = {name: common.make_shift(name, args.seed)[0] for name in args.conditions}

    tiles = common.read_pairs(Path(args.dataset), args.limit, args.tiles)
    if not tiles:
        raise SystemExit(f"no image/mask pairs found in {args.dataset}")
    args.fold_assignment = None
    if args.held_out:
        args.fold_assignment = ensure_fold_models(card, args)
        missing = [name for name, _, _ in tiles if Path(name).stem not in args.fold_assignment]
        tiles = [t for t in tiles if Path(t[0]).stem in args.fold_assignment]
        held_out_note = (
            f"held out: each of {len(tiles)} tiles scored by the fold model of the card's "
            f"{len({*args.fold_assignment.values()})}-fold CV that never saw it ("
            + ("the fold models train_default.py saved, whose figures the card reports"
               if args.fold_models_source == "saved" else "retrained with the card's recipe")
            + "; last epoch; energy gate = the card's, at each fold model's own energy scale)"
            + (f"; {len(missing)} tiles in no fold were skipped" if missing else "")
        )
    else:
        chosen, held_out_note = held_out_tiles(card, [name for name, _, _ in tiles])
        tiles = [t for t in tiles if t[0] in set(chosen)]
    normalise = normalised_conditions(args)

    totals: dict = {}

    def collect(tile_name, tile_scores, done):
        for key, score in tile_scores.items():
            totals.setdefault(key, Score()).merge(score)
        if not args.quiet:
            print(f"[{done}/{len(tiles)} tiles] {tile_name}, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)

    if args.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(args.workers, mp_context=context, initializer=_init_worker,
                                 initargs=(args,)) as pool:
            for done, (tile_name, tile_scores) in enumerate(pool.map(_evaluate_tile, tiles), start=1):
                collect(tile_name, tile_scores, done)
    else:
        _init_worker(args)
        for done, tile in enumerate(tiles, start=1):
            collect(*_evaluate_tile(tile), done)

    rows = []
    baseline = {v: totals[("none", v)].summary(gate_present) for v in ("raw", "normalised") if ("none", v) in totals}
    for condition in args.conditions:
        row = {"condition": condition, "description": descriptions[condition], "normalised": None}
        for variant in ("raw", "normalised"):
            if (condition, variant) in totals:
                summary = totals[(condition, variant)].summary(gate_present)
                summary["f1_drop"] = baseline[variant]["f1"] - summary["f1"]
                row[variant] = summary
        rows.append(row)

    raw = [r["raw"] for r in rows]
    shifted_rows = [r for r in rows if r["condition"] != "none"]
    goals = {
        "f1_drop_max": F1_DROP_GOAL,
        "worst_f1_drop": max((r["raw"]["f1_drop"] for r in shifted_rows), default=None),
        "f1_drop_met": all(r["raw"]["f1_drop"] <= F1_DROP_GOAL + 1e-12 for r in shifted_rows),
        "gated_not_worse_met": (all(s["gated"]["f1"] >= s["f1"] - 1e-12 for s in raw) if gate_present else None),
    }
    return {
        "benchmark": "robustness",
        "model": {"name": card.name, "version": int(card.version), "pixel_size_um": card.pixel_size_um,
                  "energy_gate": card.energy_gate},
        "dataset": str(Path(args.dataset)),
        "dataset_pixel_size_um": args.pixel_size,
        "tiles": [t[0] for t in tiles],
        "held_out": not held_out_note.startswith("NOT"),
        "held_out_note": held_out_note,
        "options": {"tta": args.tta, "device": args.device, "threads": args.threads, "workers": args.workers,
                    "seed": args.seed, "stain_norm": args.stain_norm, "stain_norm_conditions": normalise},
        "conditions": rows,
        "goals": goals,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _f(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _resolution_note(report: dict) -> str:
    """How much one object moves F1 here: differences of that size are noise, not robustness."""
    from hubseg.metrics import f1

    base = report["conditions"][0]["raw"]
    tp, fp, fn = base["tp"], base["fp"], base["fn"]
    step = abs(f1(tp, fp, fn) - f1(max(tp - 1, 0), fp, fn + (1 if tp else 0)))
    return (f"Resolution: {tp + fn} true glomeruli in all; one glomerulus found or missed moves F1 by about "
            f"{step:.3f}, so changes of that size are within noise.")


def format_table(report: dict) -> str:
    """A Markdown table (readable in a terminal too) plus the notes that make it honest."""
    normalised = report["options"]["stain_norm"] != "none"
    header = ["shift", "F1", "ΔF1", "gated F1", "P", "R", "Dice", "energy AUROC", "objects (uncertain)"]
    if normalised:
        method = report["options"]["stain_norm"]
        header += [f"F1 +{method}", f"gated F1 +{method}", f"Dice +{method}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in report["conditions"]:
        raw = row["raw"]
        gated = raw["gated"]
        cells = [
            row["condition"] if row["condition"] != "none" else "none (unshifted)",
            _f(raw["f1"]), _f(-raw["f1_drop"], signed=True) if row["condition"] != "none" else "",
            _f(gated["f1"] if gated else None), _f(raw["precision"]), _f(raw["recall"]), _f(raw["dice"]),
            _f(raw["energy_auroc"]), f"{raw['objects']} ({raw['uncertain']})",
        ]
        if normalised:
            norm = row["normalised"]
            if norm is None:
                cells += ["", "", ""]
            else:
                cells += [_f(norm["f1"]), _f(norm["gated"]["f1"] if norm["gated"] else None), _f(norm["dice"])]
        lines.append("| " + " | ".join(cells) + " |")
    model = report["model"]
    goals = report["goals"]
    gate = model["energy_gate"]
    notes = [
        "",
        f"Model {model['name']} v{model['version']} (operates at {model['pixel_size_um']:g} µm/px; energy gate "
        + (f"{gate.get('cutoff'):.3f}" if isinstance(gate, dict) and gate.get("cutoff") is not None else "none") + "); "
        f"{len(report['tiles'])} AIDPATH tiles at {report['dataset_pixel_size_um']:g} µm/px; "
        f"TTA {report['options']['tta']}; {report['elapsed_s']:.0f} s.",
        f"Tiles: {report['held_out_note']}.",
        _resolution_note(report),
        "Shifts: " + "; ".join(f"{r['condition']} = {r['description']}" for r in report["conditions"]) + ".",
        f"Goal F1 drop ≤ {goals['f1_drop_max']}: {'met' if goals['f1_drop_met'] else 'NOT met'} "
        f"(worst drop {_f(goals['worst_f1_drop'])}"
        + "".join(f"; {r['condition']} {_f(-r['raw']['f1_drop'], signed=True)}" for r in report["conditions"]
                  if r["condition"] != "none" and r["raw"]["f1_drop"] > goals["f1_drop_max"] + 1e-12)
        + "). Goal gated F1 ≥ F1: "
        + ({True: "met", False: "NOT met", None: "n/a (model has no energy gate)"}[goals["gated_not_worse_met"]]) + ".",
    ]
    return "\n".join(lines) + "\n\n" + "\n\n".join(n for n in notes if n)  # notes as Markdown paragraphs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name or folder (default: the active/shipped default)")
    parser.add_argument("--data-dir", default=None, help="hubseg data directory for user models (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET), help="folder with images/ and masks/ (default: %(default)s)")
    parser.add_argument("--pixel-size", type=float, default=DATASET_PIXEL_SIZE_UM, help="µm/px of the dataset (default: %(default)s)")
    parser.add_argument("--conditions", nargs="+", default=list(DEFAULT_CONDITIONS),
                        help="shifts to run, first = baseline (default: %(default)s)")
    parser.add_argument("--stain-norm", choices=("none", "macenko", "reinhard"), default="macenko",
                        help="also run every shift after this stain normalisation (default: %(default)s)")
    parser.add_argument("--tiles", nargs="+", default=None, help="only these tiles (file names or stems)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N tiles")
    parser.add_argument("--tta", default="flips", help="test-time augmentation of the engine (default: %(default)s, as detection)")
    parser.add_argument("--device", default="cpu", help="cpu|cuda|mps|auto (default: %(default)s)")
    parser.add_argument("--stain-norm-all", action="store_true",
                        help="normalise under every shift (default: only the baseline and the HED stain shifts)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes, one tile each at a time (default: %(default)s; 2 uses both CPU cores)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per process (default: %(default)s: on a shared, busy CPU more threads "
                        "per process are slower)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the HED shifts (default: %(default)s)")
    parser.add_argument("--held-out", action="store_true",
                        help="score every tile with the model's CV fold model that never saw it (trains the k fold "
                        "models with the card's recipe once, ~7 min each on one CPU thread, cached in --fold-cache)")
    parser.add_argument("--fold-models", default=str(REPO_ROOT / "out" / "cv"),
                        help="fold models saved by train_default.py (its --cv-dir); used when their sha256 matches the card")
    parser.add_argument("--fold-cache", default=str(REPO_ROOT / "out" / "robustness-folds"),
                        help="where fold models are cached (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--write-card", action="store_true",
                        help="also store the held-out table in the model's card as metrics.robustness")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.conditions[0] != "none":
        args.conditions = ["none"] + [c for c in args.conditions if c != "none"]
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    if not (Path(args.dataset) / "images").is_dir():
        print(f"dataset not found: {args.dataset} (expected images/ and masks/ inside)", file=sys.stderr)
        return 2
    try:
        report = run_benchmark(args)
    except Exception as error:  # one line for user errors, as the CLI does
        from hubseg.errors import HubsegError

        if isinstance(error, HubsegError):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_table(report))
    if args.write_card:
        folder = write_card_section(report, args)
        print(f"wrote metrics.robustness into {folder}/card.json", file=sys.stderr)
    return 0


def card_section(report: dict) -> dict:
    """The held-out table as the model card's ``metrics.robustness``."""
    def row(condition: dict) -> dict:
        raw, normalised = condition["raw"], condition.get("normalised")
        out = {"shift": condition["condition"], "description": condition["description"],
               "f1": round(raw["f1"], 3), "delta_f1": round(-raw["f1_drop"], 3),
               "gated_f1": round(raw["gated"]["f1"], 3) if raw.get("gated") else None,
               "precision": round(raw["precision"], 3), "recall": round(raw["recall"], 3),
               "dice": round(raw["dice"], 3),
               "energy_auroc": None if raw["energy_auroc"] is None else round(raw["energy_auroc"], 3),
               "objects": raw["objects"], "uncertain": raw["uncertain"]}
        if normalised:
            out["f1_stain_normalised"] = round(normalised["f1"], 3)
            out["gated_f1_stain_normalised"] = round(normalised["gated"]["f1"], 3) if normalised.get("gated") else None
        return out

    goals = report["goals"]
    return {
        "source": f"scripts/bench_robustness.py --held-out --write-card ({time.strftime('%Y-%m-%d')})",
        "tiles": report["held_out_note"],
        "options": report["options"],
        "goals": {"max_f1_drop": goals["f1_drop_max"], "gated_f1_at_least_ungated": True},
        "goals_met": {"max_f1_drop": goals["f1_drop_met"], "gated_f1_at_least_ungated": goals["gated_not_worse_met"]},
        "worst_f1_drop": None if goals["worst_f1_drop"] is None else round(goals["worst_f1_drop"], 3),
        "held_out" if report["held_out"] else "seen_in_training": [row(c) for c in report["conditions"]],
    }


def write_card_section(report: dict, args) -> Path:
    """Put :func:`card_section` into the benchmarked model's card (the weights and their sha256 are untouched)."""
    from hubseg.models.card import CARD_FILENAME, ModelCard
    from hubseg.models.registry import ModelRegistry

    if not report["held_out"]:
        raise SystemExit("--write-card needs held-out figures (run with --held-out or a card that lists held-out tiles)")
    folder = ModelRegistry(args.data_dir).path(args.model or ModelRegistry(args.data_dir).active_name())
    card = ModelCard.load(folder)
    card.metrics = {**(card.metrics or {}), "robustness": card_section(report)}
    card.save(folder / CARD_FILENAME)
    return folder


if __name__ == "__main__":
    sys.exit(main())
