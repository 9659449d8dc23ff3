#!/usr/bin/env python
"""One review round adapts the model to a new lab — measured.

Data: the AIDPATH PAS tiles (../shared/data/pas-glomeruli-aidpath, 24 tiles with masks, 0.4942 µm/px). Per seed:

1. **v0** = the default model's recipe (scripts/train_default.py: EfficientNet-lite0 from ImageNet, 1.5 µm/px,
   192-px crops, lr 2e-3, one random tile per glomerulus tile) trained by :func:`hubseg.training.train` on half
   of the tiles (stratified by glomerulus count). Cached under ``out/bench_adaptation/models`` (one per seed and
   epoch count), so later runs skip it.
2. **A new lab** = the other half, shifted as another lab's scanner and stain would (composed from
   scripts/bench_robustness.py's shifts: HED stain shift, blur, input pixel size, JPEG). Its tiles are split into
   review tiles and test tiles.
3. **The simulated pathologist** (scripts/hitl_benchmark.py's reviewer) works through v0's output on the review
   tiles, either the first K objects of the review list (protocol ``list-K``; list order = the review score when
   the model has one, else energy, as the engine ranks) with a reviewed region around each, or every object of
   the review tile with the most glomeruli (protocol ``tile``); accepts, corrects (true shape), rejects, and draws
   the glomeruli missed inside the reviewed regions. The result is real ``hubseg-labelset/1`` files.
   Protocol ``tiles-K`` is the maintainers' shape: the K busiest review tiles fully corrected (every object
   decided, every miss drawn, one reviewed region per tile), fine-tuned with the product's defaults, scored on
   the lab's test tiles; repeat over splits (``--seeds``) until each configuration has ≥ 25 test glomeruli
   (the pooled table counts them).
4. **v1** = ``hubseg.training.train(TrainConfig(base_model=v0), [LabelSetSource(...)])`` with the library's own
   fine-tune defaults (only seed/threads, and ``--epochs-ft`` when given, are set here), exactly what
   ``hubseg train LABELSETS --model v0`` does.
   **Self-training rows** (``--self-training alone tile``): ``hubseg adapt``'s defaults (lr 5e-4, 800
   iterations, one round) from v0 with the lab's review tiles as the *unlabelled* images — alone, and with the
   ``tile`` protocol's label set mixed in ("self-training + 1 corrected tile"). The test tiles are never seen.
5. Every model is scored on the new lab's test tiles with the product's detection defaults: F1 of all objects and
   of the confident ones (not flagged uncertain by the gate), pixel Dice, fraction of objects flagged uncertain,
   AUROC (true vs false objects) of the review score (``DetectedObject.review_score``; n/a when the model has
   none) and of energy, CPU minutes of the training, and review efficiency: the share of errors (false objects
   and badly shaped ones, IoU < 0.75) in the first 10 / 20 % of the list ordered by review score, energy, random.

A second table pools the splits (counts summed): test glomeruli, the share of objects the gate flags, F1 of the
confident objects (the product's gate), F1 at the best single energy cut (an oracle chosen on the test objects:
what the gate should come close to) and the gate rule each card recorded (with its held-out true / false counts).

Every figure of the first table is the mean ± sample standard deviation over the seeds; a v1 − v0 difference is called within noise
when it is smaller than twice its standard error over the seeds (paired by seed). ``--json PATH`` ('-' = stdout)
writes every per-seed figure. Sized for a shared CPU: ``--quick`` (short v0, short fine-tunes) and
``nice -n 15 timeout 3600 .venv/bin/python scripts/bench_adaptation.py --quick``. Seeds (and labs) can run as
separate processes, each with its own ``--json``; ``--table-from A.json B.json ...`` pools them into one table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from scripts import common  # the shifts
    from scripts import hitl_benchmark as hitl  # tiles, matching, the simulated reviewer
except ImportError:  # run as `python scripts/bench_adaptation.py`: this folder is sys.path[0], the repository root is not
    import common
    import hitl_benchmark as hitl

REPO = common.REPO_ROOT

DEFAULT_DATA = hitl.DEFAULT_DATA
SOURCE_PIXEL_SIZE_UM = hitl.SOURCE_PIXEL_SIZE_UM
CACHE = REPO / "out" / "bench_adaptation"
# Two new labs: a 40× scanner with a bluish stain, soft focus and JPEG; a low-resolution export of a pinker stain.
LABS = {
    "lab-40x": ("hed-0.2", "blur-1.5", "scale-0.25", "jpeg-50"),
    "lab-3um": ("hed-0.3", "scale-3.0", "jpeg-40"),
}
FRACTIONS = (0.1, 0.2)
RANDOM_SHUFFLES = 2000
MIN_TRUE_AREA_UM2 = 1000.0  # true glomeruli below the detection minimum (tile-edge slivers) are ignored


FT_OPTIONS = {"encoder_lr_factor": float, "ema_decay": float, "lr": float,
              "freeze_bn": lambda v: {"true": True, "false": False}[v.lower()]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="AIDPATH folder with images/ and masks/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--labs", nargs="+", default=list(LABS), choices=list(LABS), help="new labs (default: all)")
    parser.add_argument("--protocols", nargs="+", default=["list-10", "tile"],
                        help="review protocols: list-K (first K of the review list), tile (the busiest review tile) "
                             "and/or tiles-K (the K busiest review tiles, every region fully corrected: the maintainers' "
                             "protocol; default list-10 tile)")
    parser.add_argument("--epochs-v0", type=int, default=200, help="v0 epochs (default 200, as the default model)")
    parser.add_argument("--epochs-ft", type=int, help="fine-tune epochs (default: the library's fine-tune default)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="v0 40 epochs, fine-tunes 10 epochs")
    parser.add_argument("--self-training", nargs="*", default=["alone", "tile"], choices=["alone", "tile"],
                        help="self-training rows: 'alone' (teacher v0, the review tiles unlabelled) and/or "
                             "'tile' (the same plus the tile protocol's label set); default both, none = skip")
    parser.add_argument("--st-iterations", type=int, default=800,
                        help="self-training iterations (default 800, as `hubseg adapt`)")
    parser.add_argument("--ft-option", action="append", default=[], metavar="NAME=VALUE",
                        help="fine-tune recipe override (repeatable), one of encoder_lr_factor, freeze_bn, ema_decay, lr; "
                             "e.g. --ft-option encoder_lr_factor=0.1 --ft-option freeze_bn=true (rows are named after them)")
    parser.add_argument("--json", metavar="PATH", help="write all figures as JSON to PATH ('-' = stdout)")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"v0 models and shifted tiles (default {CACHE})")
    parser.add_argument("--table-from", type=Path, nargs="+", metavar="JSON",
                        help="only print the table of (partial) --json files, their runs pooled (e.g. one file per seed)")
    args = parser.parse_args(argv)
    for protocol in args.protocols:
        if protocol != "tile" and not (protocol.startswith(("list-", "tiles-")) and protocol.split("-")[1].isdigit()):
            parser.error(f"unknown protocol {protocol!r}; valid: list-K (K a number, e.g. list-10), tile, or tiles-K "
                         "(the K busiest review tiles fully corrected, e.g. tiles-2)")
    args.ft_overrides = {}
    for item in args.ft_option:
        name, _, value = item.partition("=")
        if name not in FT_OPTIONS or not value:
            parser.error(f"--ft-option {item!r}: give NAME=VALUE with NAME one of {', '.join(FT_OPTIONS)}")
        try:
            args.ft_overrides[name] = FT_OPTIONS[name](value)
        except (ValueError, KeyError):
            parser.error(f"--ft-option {item!r}: {value!r} is not a valid value for {name} (numbers; true/false for freeze_bn)")
    if args.quick:
        args.epochs_v0 = min(args.epochs_v0, 40)
        args.epochs_ft = min(args.epochs_ft or 10, 10)
    return args


# --- the new lab --------------------------------------------------------------------------------------------
def split_seed(tiles: list, seed: int) -> dict[str, list]:
    """Tiles → v0 training (half), new-lab review (a quarter) and new-lab test (a quarter), each stratified by
    glomerulus count (shuffle, stable sort by count, deal in turn)."""
    rng = np.random.default_rng(seed)
    order = [tiles[i] for i in rng.permutation(len(tiles))]
    order.sort(key=lambda t: -len(t.truth))
    parts: dict[str, list] = {"v0": [], "review": [], "test": []}
    for index, tile in enumerate(order):
        parts[("v0", "review", "v0", "test")[index % 4]].append(tile)
    return {k: sorted(v, key=lambda t: t.name) for k, v in parts.items()}


def shift_tile(rgb: np.ndarray, pixel_size_um: float, name: str, steps, seed: int) -> common.Shifted:
    """The composition of bench_robustness shifts (in order); ``to_original`` maps shifted px to source px."""
    shifted = common.Shifted(rgb, pixel_size_um, 1.0)
    for step in steps:
        _, function = common.make_shift(step, seed)
        out = function(shifted.rgb, shifted.pixel_size_um, name)
        shifted = common.Shifted(out.rgb, out.pixel_size_um, shifted.to_original * out.to_original)
    return shifted


def make_lab(tiles: list, steps, seed: int, folder: Path) -> tuple[list, float]:
    """Shifted copies of ``tiles`` written as PNGs into ``folder`` (label sets point at them), truth in their frame."""
    from PIL import Image
    from shapely import affinity

    folder.mkdir(parents=True, exist_ok=True)
    lab, pixel_size = [], None
    for tile in tiles:
        shifted = shift_tile(tile.rgb, SOURCE_PIXEL_SIZE_UM, tile.name, steps, seed)
        path = folder / f"{tile.name}.png"
        Image.fromarray(shifted.rgb).save(path)
        factor = 1.0 / shifted.to_original
        truth = [affinity.scale(g, factor, factor, origin=(0, 0)) for g in tile.truth]
        lab.append(hitl.Tile(tile.name, path, shifted.rgb, truth))
        pixel_size = shifted.pixel_size_um
    return lab, float(pixel_size)


# --- detection and scoring ------------------------------------------------------------------------------------
@dataclass
class LabProposal(hitl.Proposal):
    """A detected object with what the review list and the scores need."""

    review_score: float | None = None
    uncertain: bool = False
    small_truth: bool = False  # matched a true sliver below the minimum area: neither TP nor FP


def detect_lab(model, tiles: list, pixel_size_um: float) -> tuple[list[LabProposal], dict[str, list]]:
    """Detection with the product's defaults on every tile; objects matched to the truth (polygon IoU)."""
    proposals, objects = [], {}
    for tile in tiles:
        result = common.detect_array(tile.rgb, pixel_size_um, model)
        found = result.objects
        # Gated: the model separates uncertain from confident objects (an energy gate, or a review-score model).
        for obj in found:
            obj.extra["bench_gated"] = result.energy_gate is not None or getattr(model.card, "review_model", None) is not None
        objects[tile.name] = found
        for index, obj in enumerate(found):
            iou, truth_index = hitl.match(obj.geometry, tile.truth)
            small = truth_index is not None and tile.truth[truth_index].area * pixel_size_um**2 < MIN_TRUE_AREA_UM2
            score = getattr(obj, "review_score", None)
            proposals.append(LabProposal(tile.name, index, obj.geometry, float(obj.mean_energy), float(obj.mean_probability),
                                         iou, truth_index, None if score is None else float(score), bool(obj.uncertain),
                                         small and iou >= 0.5))
    return proposals, objects


def review_order(proposals: list[LabProposal]) -> tuple[list[int], str]:
    """The engine's review order: lowest review score first when every object has one, else lowest energy first."""
    n = len(proposals)
    if n and all(p.review_score is not None for p in proposals):
        return sorted(range(n), key=lambda i: (proposals[i].review_score, i)), "review score"
    return sorted(range(n), key=lambda i: (proposals[i].energy, i)), "energy"


def review_efficiency(proposals: list[LabProposal], seed: int) -> dict:
    """Share of the errors found in the first 10 / 20 % of the list: review score, energy and random order."""
    errors = np.array([p.error and not p.small_truth for p in proposals], bool)
    n = len(proposals)
    has_score = n > 0 and all(p.review_score is not None for p in proposals)
    orders = {"energy": sorted(range(n), key=lambda i: (proposals[i].energy, i))}
    if has_score:
        orders["review_score"] = sorted(range(n), key=lambda i: (proposals[i].review_score, i))
    rng = np.random.default_rng(seed + 2)
    result = {"errors": int(errors.sum()), "objects": n}
    for fraction in FRACTIONS:
        key = f"{int(fraction * 100)}%"
        shuffled = [hitl.share_found(list(rng.permutation(n)), errors, fraction) for _ in range(RANDOM_SHUFFLES)] if n else []
        shuffled = [s for s in shuffled if s is not None]
        result[key] = {
            "review_score": hitl.share_found(orders["review_score"], errors, fraction) if has_score else None,
            "energy": hitl.share_found(orders["energy"], errors, fraction),
            "random": float(np.mean(shuffled)) if shuffled else None,
        }
    return result


def best_cut(counted: list[LabProposal], f1_of) -> dict:
    """The best single energy cut on these objects (oracle: chosen on the test objects themselves): the F1 of the
    objects at or above it, and the cut. What the product's gate is compared with."""
    best = f1_of(counted)
    best["cut"] = None
    for cut in sorted({p.energy for p in counted}):
        candidate = f1_of([p for p in counted if p.energy >= cut])
        if candidate["f1"] > best["f1"] + 1e-12:
            best = {**candidate, "cut": cut}
    return best


def score_lab(proposals: list[LabProposal], objects: dict[str, list], tiles: list, pixel_size_um: float,
              model_pixel_size_um: float, seed: int) -> dict:
    """F1 all / confident, pixel Dice (at model scale), uncertain fraction, AUROCs, review efficiency."""
    from hubseg import metrics
    from hubseg.geometry import rasterize_geometry

    counted = [p for p in proposals if not p.small_truth]
    real = {(t.name, i) for t in tiles for i, g in enumerate(t.truth) if g.area * pixel_size_um**2 >= MIN_TRUE_AREA_UM2}

    def f1_of(subset):
        found = {(p.tile, p.truth_index) for p in subset if p.tp}
        tp = len(found & real)
        fp = sum(1 for p in subset if not p.tp)
        fn = len(real - found)
        return {"f1": metrics.f1(tp, fp, fn), "precision": metrics.precision(tp, fp, fn), "recall": metrics.recall(tp, fp, fn),
                "tp": tp, "fp": fp, "fn": fn}

    gated = any(o.extra.get("bench_gated", o.energy_gate is not None) for found in objects.values() for o in found)
    intersection = total = 0
    downsample = model_pixel_size_um / pixel_size_um
    for tile in tiles:
        h, w = tile.rgb.shape[:2]
        shape = (max(1, math.ceil(h / downsample)), max(1, math.ceil(w / downsample)))
        pred = np.zeros(shape, bool)
        for obj in objects[tile.name]:
            pred |= rasterize_geometry(obj.geometry, shape, (0.0, 0.0), downsample)
        true = np.zeros(shape, bool)
        for geometry in tile.truth:
            true |= rasterize_geometry(geometry, shape, (0.0, 0.0), downsample)
        intersection += int((pred & true).sum())
        total += int(pred.sum() + true.sum())
    tps = [p for p in counted if p.tp]
    fps = [p for p in counted if not p.tp]
    scored = all(p.review_score is not None for p in counted) and counted
    return {
        "all": f1_of(counted),
        "best_cut": best_cut(counted, f1_of),
        "true_glomeruli": len(real),
        "confident": f1_of([p for p in counted if not p.uncertain]) if gated else None,
        "dice": 1.0 if total == 0 else 2.0 * intersection / total,
        "objects": len(counted),
        "uncertain_fraction": (sum(p.uncertain for p in counted) / len(counted)) if counted and gated else None,
        "auroc_review_score": metrics.auroc([p.review_score for p in tps], [p.review_score for p in fps]) if scored else None,
        "auroc_energy": metrics.auroc([p.energy for p in tps], [p.energy for p in fps]),
        "efficiency": review_efficiency(counted, seed),
    }


# --- training ---------------------------------------------------------------------------------------------
def v0_config(args, seed: int, name: str):
    """The default model's recipe (scripts/train_default.py) through the public TrainConfig."""
    from hubseg.training.trainer import TrainConfig

    return TrainConfig(name=name, family="adapt-v0", encoder="timm-tf_efficientnet_lite0", imagenet=True, pixel_size_um=1.5,
                       tile_size=256, train_tile_size=192, epochs=args.epochs_v0, batch_size=8, lr=2e-3, random_tiles=1.0,
                       augmentation="default", val_every=args.epochs_v0, seed=seed, device=args.device, num_threads=args.threads)


def ensure_v0(args, seed: int, names: list[str], log) -> tuple[Path, float, bool]:
    """(model folder, training CPU minutes, cached?) of v0 for this seed; trained once, then reused."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import train

    registry_dir = args.cache / "models"
    name = f"adapt-v0-s{seed}-e{args.epochs_v0}-v1"
    folder = registry_dir / "models" / name
    stamp = folder / "bench_adaptation.json"
    if stamp.is_file():
        info = json.loads(stamp.read_text())
        if info.get("tiles") == names:
            return folder, float(info["cpu_minutes"]), True
    log(f"training v0 {name} on {len(names)} tiles, {args.epochs_v0} epochs")
    registry = ModelRegistry(registry_dir, shipped_dir=registry_dir / "none")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)  # an interrupted or stale run
    cpu0 = time.process_time()
    train(v0_config(args, seed, name), [ImageFolderSource(args.data, SOURCE_PIXEL_SIZE_UM, names=names)], registry)
    minutes = (time.process_time() - cpu0) / 60
    stamp.write_text(json.dumps({"tiles": names, "cpu_minutes": minutes}))
    return folder, minutes, False


def self_train_v0(args, seed: int, v0_folder: Path, images: list[tuple[Path, float]], label_set_paths: list[Path],
                  workdir: Path):
    """Self-training from v0 as ``hubseg adapt`` runs it by default (lr 5e-4, 800 iterations, one round); the
    unlabelled images are the lab's review tiles, ``label_set_paths`` real labels mixed in. (card, registry,
    CPU minutes, the self-training record)."""
    import shutil

    from hubseg.models.registry import ModelRegistry
    from hubseg.training.selftrain import SelfTrainConfig, self_train
    from hubseg.training.sources import LabelSetSource
    from hubseg.training.trainer import TrainConfig

    registry = ModelRegistry(workdir, shipped_dir=workdir / "none")
    if not (workdir / "models" / v0_folder.name).exists():
        shutil.copytree(v0_folder, workdir / "models" / v0_folder.name)
    config = SelfTrainConfig(iterations=args.st_iterations,
                             train=TrainConfig(lr=5e-4, random_tiles=1.0, seed=seed, device=args.device, num_threads=args.threads))
    cpu0 = time.process_time()
    cards = self_train(images, registry, config, base_model=v0_folder.name,
                       label_sources=[LabelSetSource(p) for p in label_set_paths])
    return cards[-1], registry, (time.process_time() - cpu0) / 60, cards[-1].provenance.get("self_training", {})


def fine_tune(args, seed: int, v0_folder: Path, label_set_paths: list[Path], workdir: Path):
    """v1 through the public API with the library's fine-tune defaults; (card, registry, CPU minutes)."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.sources import LabelSetSource
    from hubseg.training.trainer import TrainConfig, train

    registry = ModelRegistry(workdir, shipped_dir=workdir / "none")
    overrides = {"epochs": args.epochs_ft} if args.epochs_ft else {}
    overrides.update(args.ft_overrides)
    config = TrainConfig(base_model=str(v0_folder), seed=seed, device=args.device, num_threads=args.threads, **overrides)
    cpu0 = time.process_time()
    card = train(config, [LabelSetSource(p) for p in label_set_paths], registry)
    return card, registry, (time.process_time() - cpu0) / 60


# --- aggregation and the table ------------------------------------------------------------------------------
def mean_spread(values) -> dict | None:
    """Mean, sample standard deviation and n over seeds (None values left out); None when nothing is left."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "n": len(values)}


def paired_delta(after, before) -> dict | None:
    """v1 − v0 per seed; ``within_noise`` when |mean| < 2 standard errors (or fewer than 2 seeds)."""
    pairs = [(a, b) for a, b in zip(after, before) if a is not None and b is not None]
    if not pairs:
        return None
    deltas = [a - b for a, b in pairs]
    stats = mean_spread(deltas)
    se = stats["sd"] / math.sqrt(stats["n"]) if stats["n"] > 1 else float("inf")
    stats["within_noise"] = bool(abs(stats["mean"]) <= 2 * se)
    return stats


FIELDS = {
    "F1 all": lambda s: s["all"]["f1"],
    "F1 confident": lambda s: s["confident"]["f1"] if s["confident"] else None,
    "F1 best cut": lambda s: s["best_cut"]["f1"] if s.get("best_cut") else None,
    "Dice": lambda s: s["dice"],
    "uncertain": lambda s: s["uncertain_fraction"],
    "AUROC score": lambda s: s["auroc_review_score"],
    "AUROC energy": lambda s: s["auroc_energy"],
    "errors@10% score/energy/random": lambda s: [s["efficiency"]["10%"][k] for k in ("review_score", "energy", "random")],
    "errors@20% score/energy/random": lambda s: [s["efficiency"]["20%"][k] for k in ("review_score", "energy", "random")],
}


def pooled(per_seed: list[tuple[int, dict]]) -> dict:
    """Counts summed over the splits (seeds): test glomeruli, F1 of the confident objects (the product's gate), of
    the best single cut, of all objects, the share the gate flags, and the gate rules the cards recorded."""
    from hubseg import metrics

    def pooled_f1(get):
        parts = [get(m["scores"]) for _, m in per_seed]
        if not parts or any(p is None for p in parts):
            return None
        tp, fp, fn = (sum(p[k] for p in parts) for k in ("tp", "fp", "fn"))
        return round(metrics.f1(tp, fp, fn), 4)

    objects = sum(m["scores"]["objects"] for _, m in per_seed)
    flagged = [m["scores"]["uncertain_fraction"] * m["scores"]["objects"] for _, m in per_seed
               if m["scores"]["uncertain_fraction"] is not None]
    return {"test_glomeruli": sum(m["scores"].get("true_glomeruli", 0) for _, m in per_seed), "objects": objects,
            "flagged_share": round(sum(flagged) / objects, 4) if flagged and objects else None,
            "f1_confident": pooled_f1(lambda s: s["confident"]), "f1_best_cut": pooled_f1(lambda s: s.get("best_cut")),
            "f1_all": pooled_f1(lambda s: s["all"]),
            "gate_rules": sorted({f"{m['gate_rule']} ({m['gate_evidence'][0]} true / {m['gate_evidence'][1]} false)"
                                  for _, m in per_seed if m.get("gate_rule")})}


def summarise(runs: list[dict]) -> list[dict]:
    """Rows (lab, model) with mean ± sd over seeds of every field, and paired v1 − v0 deltas of the F1s."""
    rows = []
    keys = []
    for run in runs:
        for model in run["models"]:
            key = (run["lab"], model["model"])
            if key not in keys:
                keys.append(key)
    for lab, model in keys:
        per_seed = [(run["seed"], m) for run in runs if run["lab"] == lab for m in run["models"] if m["model"] == model]
        row = {"lab": lab, "model": model, "seeds": [s for s, _ in per_seed], "fields": {}}
        for name, get in FIELDS.items():
            values = [get(m["scores"]) for _, m in per_seed]
            if values and isinstance(values[0], list):
                row["fields"][name] = [mean_spread([v[i] for v in values]) for i in range(3)]
            else:
                row["fields"][name] = mean_spread(values)
        row["fields"]["CPU min"] = mean_spread([m["cpu_minutes"] for _, m in per_seed])
        row["pooled"] = pooled(per_seed)
        if model != "v0":
            base = {run["seed"]: m for run in runs if run["lab"] == lab for m in run["models"] if m["model"] == "v0"}
            for name in ("F1 all", "F1 confident", "Dice"):
                row.setdefault("delta", {})[name] = paired_delta([FIELDS[name](m["scores"]) for _, m in per_seed],
                                                                 [FIELDS[name](base[s]["scores"]) if s in base else None for s, _ in per_seed])
        rows.append(row)
    return rows


def _fmt(stats, digits=2) -> str:
    if stats is None:
        return "n/a"
    if stats["n"] < 2:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"


def _fmt_plain(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_delta(stats) -> str:
    if stats is None:
        return ""
    text = f"{stats['mean']:+.2f}"
    return f"{text} (noise)" if stats["within_noise"] else text


def render(report: dict) -> str:
    s = report["setup"]
    lines = [
        f"hubseg adaptation benchmark — AIDPATH PAS, seeds {' '.join(map(str, s['seeds']))}, v0 {s['epochs_v0']} epochs "
        f"(default recipe, half the tiles), fine-tunes {s['epochs_ft'] or 'library default'} epochs{' [QUICK]' if s['quick'] else ''}; "
        "mean ± sd over seeds, scored on the new lab's test tiles" + (" — PARTIAL (interrupted run)" if report.get("partial") else ""),
    ]
    for lab in s["labs"]:
        lines.append(f"  {lab}: {' + '.join(LABS[lab])}")
    lines += ["", "| lab | model | F1 all (Δ) | F1 confident (Δ) | Dice | uncertain | AUROC score | AUROC energy | "
              "errors in first 10 % score / energy / random | first 20 % | CPU min |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        f, d = row["fields"], row.get("delta", {})

        def with_delta(name):
            text = _fmt(f[name])
            if f[name] is not None and f[name]["n"] < len(row["seeds"]):
                text += f" [n={f[name]['n']}]"  # some seeds had no value (e.g. a v1 without a gate)
            return f"{text} ({_fmt_delta(d[name])})" if d.get(name) else text

        eff = [" / ".join(_fmt(x) for x in f[name]) for name in ("errors@10% score/energy/random", "errors@20% score/energy/random")]
        lines.append(f"| {row['lab']} | {row['model']} | {with_delta('F1 all')} | {with_delta('F1 confident')} | {with_delta('Dice')} | "
                     f"{with_delta('uncertain')} | {with_delta('AUROC score')} | {with_delta('AUROC energy')} | {eff[0]} | {eff[1]} | "
                     f"{_fmt(f['CPU min'], 1)} |")
    lines += ["", "Pooled over the splits (counts summed): the product's gate against the best single energy cut",
              "", "| lab | model | splits | test glomeruli | objects | flagged by the gate | F1 confident (gate) | "
              "F1 best cut | F1 all | gate rule (held-out true / false) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        p = row.get("pooled") or {}
        share = p.get("flagged_share")
        lines.append(f"| {row['lab']} | {row['model']} | {len(row['seeds'])} | {p.get('test_glomeruli', 'n/a')} | "
                     f"{p.get('objects', 'n/a')} | {'n/a' if share is None else f'{100 * share:.0f} %'} | "
                     f"{_fmt_plain(p.get('f1_confident'))} | {_fmt_plain(p.get('f1_best_cut'))} | {_fmt_plain(p.get('f1_all'))} | "
                     f"{'; '.join(p.get('gate_rules') or []) or '—'} |")
    lines.append("")
    lines.append("Δ = v1 − v0 paired by seed; '(noise)' = smaller than two standard errors. CPU min = training CPU time "
                 "(v0: training it; v1: the fine-tune). n/a: the models carry no review score / no gate; [n=k]: only k seeds "
                 "had a value.")
    lines.append(f"Wall time {report['seconds']:.0f} s.")
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------------------------------
def run_lab_seed(args, seed, lab_name, parts, v0_folder, v0_minutes, log) -> dict:
    """v0 and every protocol's v1 on one lab for one seed."""
    from hubseg.models.registry import load_model_folder

    workdir = Path(tempfile.mkdtemp(prefix=f"hubseg-adapt-{lab_name}-s{seed}-"))
    lab_dir = args.cache / "labs" / f"{lab_name}-s{seed}"
    review_tiles, pixel_size = make_lab(parts["review"], LABS[lab_name], seed, lab_dir)
    test_tiles, _ = make_lab(parts["test"], LABS[lab_name], seed, lab_dir)
    v0 = load_model_folder(v0_folder, device=args.device)
    model_px = float(v0.card.pixel_size_um)
    proposals, _ = detect_lab(v0, review_tiles, pixel_size)
    test_props, test_objects = detect_lab(v0, test_tiles, pixel_size)
    models = [{"model": "v0", "cpu_minutes": v0_minutes, "scores": score_lab(test_props, test_objects, test_tiles, pixel_size, model_px, seed)}]
    log(f"{lab_name} seed {seed}: v0 F1 {models[0]['scores']['all']['f1']:.3f} on the test tiles; "
        f"{len(proposals)} objects on the review tiles")
    order, order_by = review_order(proposals)
    by_name = {t.name: t for t in review_tiles}
    protocols = list(args.protocols)
    if "tile" in args.self_training and "tile" not in protocols:
        protocols.append("tile:labels-only")  # the label set self-training + tile mixes in, without its own v1
    tile_label_sets: list[Path] = []
    for protocol in protocols:
        labels_only = protocol.endswith(":labels-only")
        protocol = protocol.split(":")[0]
        if protocol == "tile" or protocol.startswith("tiles-"):
            count = 1 if protocol == "tile" else int(protocol[6:])
            busiest = [t.name for t in sorted(review_tiles, key=lambda t: (-len(t.truth), t.name))[:count]]
            outcome = hitl.simulate_review(by_name, proposals, [], 0, v0.card.name, pixel_size_um=pixel_size, whole_tiles=busiest)
            outcome.reviewed = sum(p.tile in busiest for p in proposals)
        else:
            outcome = hitl.simulate_review(by_name, proposals, order, int(protocol[5:]), v0.card.name, pixel_size_um=pixel_size)
        paths = []
        for tile_name, label_set in outcome.label_sets:
            path = workdir / f"{tile_name}.{protocol}.labelset.json"
            path.write_text(json.dumps(label_set))
            paths.append(path)
        decisions = {k: getattr(outcome, k) for k in ("reviewed", "decisions", "accepted", "corrected", "rejected", "drawn")}
        if protocol == "tile":
            tile_label_sets = paths
        if labels_only:
            continue
        if not paths:
            log(f"  {protocol}: nothing reviewed, no fine-tune")
            continue
        card, registry, minutes = fine_tune(args, seed, v0_folder, paths, workdir / "models")
        v1 = registry.load(card.name, device=args.device)
        props, objects = detect_lab(v1, test_tiles, pixel_size)
        scores = score_lab(props, objects, test_tiles, pixel_size, model_px, seed)
        recipe = "".join(f" {k}={v}" for k, v in args.ft_overrides.items())
        calibration = (card.metrics or {}).get("calibration") or {}
        models.append({"model": f"v1 {protocol}{recipe}", "cpu_minutes": minutes, "review": decisions, "label_sets": len(paths),
                       "scores": scores, "card_gate": card.energy_gate is not None,
                       "gate_rule": calibration.get("rule") or calibration.get("method"),
                       "gate_evidence": [calibration.get("n_true"), calibration.get("n_false")]})
        log(f"  v1 {protocol} ({decisions}): F1 {scores['all']['f1']:.3f}, {minutes:.1f} CPU min")
    unlabelled = [(t.image_path, pixel_size) for t in review_tiles]
    for variant in args.self_training:
        labels = tile_label_sets if variant == "tile" else []
        if variant == "tile" and not labels:
            log("  self-training + tile: the tile protocol reviewed nothing; row skipped")
            continue
        card, registry, minutes, record = self_train_v0(args, seed, v0_folder, unlabelled, labels, workdir / "selftrain")
        student = registry.load(card.name, device=args.device)
        props, objects = detect_lab(student, test_tiles, pixel_size)
        scores = score_lab(props, objects, test_tiles, pixel_size, model_px, seed)
        row = "self-training" if variant == "alone" else "self-training + tile"
        models.append({"model": row, "cpu_minutes": minutes, "label_sets": len(labels), "scores": scores,
                       "card_gate": card.energy_gate is not None,
                       "self_training": {k: record.get(k) for k in ("pseudo_positive_objects", "uncertain_objects",
                                                                     "ignored_tissue_fraction", "agreement_with_pseudo_labels")},
                       "gate_method": ((card.metrics or {}).get("calibration") or {}).get("method") or (card.energy_gate or {}).get("source")})
        log(f"  {row}: F1 {scores['all']['f1']:.3f} (confident {(scores['confident'] or {}).get('f1')}), "
            f"{record.get('pseudo_positive_objects')} pseudo-positive objects, {minutes:.1f} CPU min")
    return {"lab": lab_name, "seed": seed, "pixel_size_um": pixel_size, "review_order": order_by, "models": models,
            "tiles": {k: [t.name for t in v] for k, v in parts.items()}}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table_from:
        reports = [json.loads(path.read_text()) for path in args.table_from]
        report = reports[0]
        report["runs"] = [run for r in reports for run in r["runs"]]
        report["setup"]["seeds"] = sorted({run["seed"] for run in report["runs"]})
        report["setup"]["labs"] = [lab for lab in LABS if any(run["lab"] == lab for run in report["runs"])]
        report["partial"] = any(r.get("partial") for r in reports)
        report["seconds"] = sum(r["seconds"] for r in reports)
        report["rows"] = summarise(report["runs"])
        print(render(report))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    if not (args.data / "images").is_dir():
        print(f"bench_adaptation: error: AIDPATH data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    tiles = hitl.load_tiles(args.data)
    runs = []
    for seed in args.seeds:
        parts = split_seed(tiles, seed)
        v0_folder, v0_minutes, cached = ensure_v0(args, seed, [t.name for t in parts["v0"]], log)
        log(f"seed {seed}: v0 {'cached' if cached else 'trained'} ({v0_minutes:.1f} CPU min)")
        for lab_name in args.labs:
            runs.append(run_lab_seed(args, seed, lab_name, parts, v0_folder, v0_minutes, log))
            if args.json and args.json != "-":  # what is done so far survives a timeout
                Path(args.json).write_text(json.dumps(build_report(args, runs, started, partial=True), indent=1, default=float))
    report = build_report(args, runs, started)
    print(render(report))
    hitl.write_json_report(report, args.json)
    return 0


def build_report(args, runs: list[dict], started: float, partial: bool = False) -> dict:
    return {
        "setup": {"seeds": args.seeds, "labs": args.labs, "lab_shifts": {k: list(LABS[k]) for k in args.labs},
                  "protocols": args.protocols, "self_training": args.self_training, "st_iterations": args.st_iterations,
                  "epochs_v0": args.epochs_v0, "epochs_ft": args.epochs_ft, "ft_options": args.ft_overrides, "quick": args.quick,
                  "threads": args.threads, "device": args.device, "min_true_area_um2": MIN_TRUE_AREA_UM2},
        "partial": partial,
        "runs": runs,
        "rows": summarise(runs),
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    sys.exit(main())
