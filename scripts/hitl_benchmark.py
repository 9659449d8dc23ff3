#!/usr/bin/env python
"""The human-in-the-loop loop, measured on real data: does energy ranking save review time,
and does a short review + pseudo-labels improve the model?

Data: the AIDPATH PAS tiles in ../shared/data/pas-glomeruli-aidpath (24 tiles, 1024 px at 0.4942 µm/px),
split by tile into A (train v0), B (predict + review), C (held-out test), stratified by glomerulus count.

1. v0 = U-Net (EfficientNet-lite0, ImageNet init from the PyPI weight wheel) trained on A at the operating
   pixel size (default 1.5 µm/px). v0 detects on B; every object gets its mean energy.
2. Ranking quality on B: objects are matched to the ground truth (IoU >= 0.5 = TP, else FP); AUROC of
   energy for TP vs FP; share of all errors (FP plus badly-shaped TPs, IoU < 0.75) found within the first
   10/20/50 % of the review list in energy order (the engine's rank: lowest energy first), probability
   order (lowest mean probability first) and random order (mean of 2000 shuffles).
3. A simulated reviewer works through the first K objects of the list (K = 5, 10, 20): accept (IoU >= 0.75),
   replace by the true shape (0.5 <= IoU < 0.75), reject (FP); around each reviewed object a reviewed region
   (its box + 25 µm) where the other objects are decided too and missed glomeruli are drawn. The decisions
   become a hubseg-labelset/1 (built by hubseg.project.labelsets, validated by hubseg.labels, exactly what
   `hubseg project export` writes); unreviewed objects outside the regions are pseudo-labels (v0's own
   output). v0 is fine-tuned on A (truth) + B (pseudo-labels + corrections) into v1; v0 vs v1 Dice and
   instance F1 on C, energy-ranked vs random review at the same K, and K = 0 (pseudo-labels only).

Prints one table; ``--json PATH`` (or ``-``) writes every figure. ``--quick`` is a smoke run (minutes).
Sized for 2 shared CPU cores: run it as ``nice -n 10 .venv/bin/python scripts/hitl_benchmark.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:
    from scripts import common
except ImportError:  # run as `python scripts/hitl_benchmark.py`: this folder is sys.path[0], the repository root is not
    import common

REPO = common.REPO_ROOT
DEFAULT_DATA = common.DEFAULT_DATASET
SOURCE_PIXEL_SIZE_UM = common.DATASET_PIXEL_SIZE_UM
MIN_GT_PIXELS = 200  # level-0 px; the data README counts glomeruli as components of 200 px or more
GOOD_SHAPE_IOU = 0.75  # matched objects below this IoU are "badly shaped" (an error worth reviewing)
REGION_MARGIN_UM = 25.0
FRACTIONS = (0.1, 0.2, 0.5)
RANDOM_SHUFFLES = 2000
# Tile sampling centres taken from pseudo-labels per tile and fine-tune (the label rasters keep every pseudo-object);
# bounds the epoch length when v0 proposes many objects, so the run stays within its CPU budget.
MAX_PSEUDO_CENTRES_PER_TILE = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="AIDPATH folder with images/ and masks/")
    parser.add_argument("--pixel-size-um", type=float, default=1.5, help="operating pixel size (µm/px, default 1.5)")
    parser.add_argument("--epochs-v0", type=int, default=100, help="epochs for v0 on A (default 100)")
    parser.add_argument("--epochs-ft", type=int, default=10, help="epochs for each fine-tune v0 -> v1 (default 10)")
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20], help="review budgets K (default 5 10 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared 2-core CPU)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few epochs, K=5 only")
    parser.add_argument("--json", metavar="PATH", help="write all figures as JSON to PATH ('-' = stdout)")
    parser.add_argument("--workdir", type=Path, help="keep models here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs_v0, args.epochs_ft, args.ks = min(args.epochs_v0, 4), min(args.epochs_ft, 2), [5]
    return args


# --- data -------------------------------------------------------------------------------------------
@dataclass
class Tile:
    name: str
    image_path: Path
    rgb: np.ndarray  # level 0
    truth: list  # shapely polygons, level-0 px


def load_tiles(root: Path) -> list[Tile]:
    from PIL import Image

    from hubseg.instances import mask_to_polygon
    from hubseg.metrics import label_instances

    tiles = []
    for image_path in sorted((root / "images").glob("*.png")):
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        mask = np.asarray(Image.open(root / "masks" / image_path.name))
        foreground = (mask.max(axis=-1) if mask.ndim == 3 else mask) > 127
        labels = label_instances(foreground, min_pixels=MIN_GT_PIXELS)
        truth = [mask_to_polygon(labels == k) for k in range(1, int(labels.max()) + 1)]
        tiles.append(Tile(image_path.stem, image_path, rgb, [t for t in truth if not t.is_empty]))
    return tiles


def split_tiles(tiles: list[Tile], seed: int) -> dict[str, list[Tile]]:
    """Stratified by glomerulus count: shuffle, sort by count (stable), deal A, B, C in turn."""
    rng = np.random.default_rng(seed)
    order = [tiles[i] for i in rng.permutation(len(tiles))]
    order.sort(key=lambda t: -len(t.truth))
    parts: dict[str, list[Tile]] = {"A": [], "B": [], "C": []}
    for index, tile in enumerate(order):
        parts["ABC"[index % 3]].append(tile)
    return {k: sorted(v, key=lambda t: t.name) for k, v in parts.items()}


# --- detection on B and matching --------------------------------------------------------------------
@dataclass
class Proposal:
    tile: str
    index: int
    geometry: object
    energy: float
    probability: float
    iou: float
    truth_index: int | None

    @property
    def tp(self) -> bool:
        return self.iou >= 0.5

    @property
    def error(self) -> bool:
        return self.iou < GOOD_SHAPE_IOU


def detect_tile(model, tile: Tile):
    from hubseg.pipeline import DetectionOptions

    options = DetectionOptions(use_energy_gate=False, tissue_detection=False, tta="none")
    return common.detect_array(tile.rgb, SOURCE_PIXEL_SIZE_UM, model, options).objects


def match(geometry, truth) -> tuple[float, int | None]:
    best, best_index = 0.0, None
    for index, glomerulus in enumerate(truth):
        if not geometry.intersects(glomerulus):
            continue
        iou = geometry.intersection(glomerulus).area / geometry.union(glomerulus).area
        if iou > best:
            best, best_index = iou, index
    return best, best_index


def propose(model, tiles: list[Tile]) -> list[Proposal]:
    proposals = []
    for tile in tiles:
        for index, obj in enumerate(detect_tile(model, tile)):
            iou, truth_index = match(obj.geometry, tile.truth)
            proposals.append(Proposal(tile.name, index, obj.geometry, float(obj.mean_energy),
                                      float(obj.mean_probability), iou, truth_index))
    return proposals


def review_orders(proposals: list[Proposal], seed: int) -> dict[str, list[int]]:
    n = len(proposals)
    return {
        "energy": sorted(range(n), key=lambda i: (proposals[i].energy, i)),  # lowest energy first
        "probability": sorted(range(n), key=lambda i: (proposals[i].probability, i)),
        "random": list(np.random.default_rng(seed + 1).permutation(n)),
    }


def share_found(order: list[int], errors: np.ndarray, fraction: float) -> float | None:
    total = int(errors.sum())
    if total == 0:
        return None
    k = math.ceil(fraction * len(order))
    return float(errors[np.asarray(order[:k], int)].sum() / total) if k else 0.0


def ranking_quality(proposals: list[Proposal], seed: int) -> dict:
    from hubseg.metrics import auroc

    errors = np.array([p.error for p in proposals], bool)
    orders = review_orders(proposals, seed)
    rng = np.random.default_rng(seed + 2)
    result = {
        "objects": len(proposals),
        "tp": sum(p.tp for p in proposals),
        "fp": sum(not p.tp for p in proposals),
        "badly_shaped": sum(p.tp and p.error for p in proposals),
        "errors": int(errors.sum()),
        "auroc_energy_tp_vs_fp": auroc([p.energy for p in proposals if p.tp], [p.energy for p in proposals if not p.tp]),
        "auroc_probability_tp_vs_fp": auroc([p.probability for p in proposals if p.tp],
                                            [p.probability for p in proposals if not p.tp]),
        "share_of_errors_found": {},
    }
    for fraction in FRACTIONS:
        shuffled = [share_found(list(rng.permutation(len(proposals))), errors, fraction) for _ in range(RANDOM_SHUFFLES)]
        shuffled = [s for s in shuffled if s is not None]
        result["share_of_errors_found"][f"{int(fraction * 100)}%"] = {
            "energy": share_found(orders["energy"], errors, fraction),
            "probability": share_found(orders["probability"], errors, fraction),
            "random": float(np.mean(shuffled)) if shuffled else None,
        }
    return result


# --- the simulated reviewer -> label set -> training data ---------------------------------------------
@dataclass
class ReviewOutcome:
    reviewed: int = 0  # list items the reviewer was shown (K, capped by the list length)
    decisions: int = 0  # objects decided, including others inside the reviewed regions
    accepted: int = 0
    corrected: int = 0
    rejected: int = 0
    drawn: int = 0
    label_sets: list = field(default_factory=list)  # (tile, label set dict)


def reviewer_decision(proposal: Proposal) -> str:
    if not proposal.tp:
        return "rejected"
    return "accepted" if proposal.iou >= GOOD_SHAPE_IOU else "corrected"


def simulate_review(tiles: dict[str, Tile], proposals: list[Proposal], order: list[int], k: int, model_name: str,
                    *, pixel_size_um: float = SOURCE_PIXEL_SIZE_UM, whole_tiles=()) -> ReviewOutcome:
    """Decisions for the first ``k`` list items and everything inside their reviewed regions, as label sets.

    ``whole_tiles``: tiles reviewed completely (one reviewed region = the whole tile), whatever the list holds.
    ``pixel_size_um``: the tiles' pixel size (written into the label sets; sets the region margin in pixels).
    """
    from shapely.geometry import box

    from hubseg.project import review
    from hubseg.project.labelsets import build_label_set
    from hubseg.project.store import ProjectObject

    outcome = ReviewOutcome(reviewed=min(k, len(order)))
    margin = REGION_MARGIN_UM / pixel_size_um
    chosen = [proposals[i] for i in order[:k]]
    chosen_ids = {id(p) for p in chosen}
    whole = set(whole_tiles)
    chosen_ids |= {id(p) for p in proposals if p.tile in whole}
    by_tile: dict[str, list[Proposal]] = {}
    for proposal in proposals:
        by_tile.setdefault(proposal.tile, []).append(proposal)
    for tile_name in sorted({p.tile for p in chosen} | whole):
        tile = tiles[tile_name]
        height, width = tile.rgb.shape[:2]
        regions = [box(0, 0, width, height)] if tile_name in whole else []
        for p in chosen:
            if p.tile == tile_name and tile_name not in whole:
                x0, y0, x1, y1 = p.geometry.bounds
                regions.append(box(max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)))
        objects = [ProjectObject(f"region-{i}", r, review.REVIEWED_REGION_CLASS, "annotation", {}, {}) for i, r in enumerate(regions)]
        accepted_truth = set()
        for p in by_tile.get(tile_name, []):
            metadata = {review.META_MODEL: model_name, review.META_REVIEW: review.PENDING}
            geometry = p.geometry
            point = p.geometry.representative_point()
            if id(p) in chosen_ids or any(r.contains(point) for r in regions):
                decision = reviewer_decision(p)
                metadata[review.META_REVIEW] = decision
                outcome.decisions += 1
                setattr(outcome, decision, getattr(outcome, decision) + 1)
                if decision == "corrected":
                    geometry = tile.truth[p.truth_index]
                if decision != "rejected":
                    accepted_truth.add(p.truth_index)
            objects.append(ProjectObject(f"{tile_name}-{p.index}", geometry, review.GLOMERULUS_CLASS, "annotation", metadata, {}))
        for index, glomerulus in enumerate(tile.truth):
            if index not in accepted_truth and any(r.contains(glomerulus.centroid) for r in regions):
                objects.append(ProjectObject(f"drawn-{index}", glomerulus, review.GLOMERULUS_CLASS, "annotation", {}, {}))
                outcome.drawn += 1
        label_set = build_label_set(objects, image_path=tile.image_path, pixel_size_um=pixel_size_um)
        if label_set is not None:
            outcome.label_sets.append((tile_name, label_set))
    return outcome


class PseudoLabelSource:
    """B at model scale: v0's unreviewed objects as pseudo-labels, the label sets' decisions on top."""

    kind = "hitl-benchmark-pseudo-labels"

    def __init__(self, data: Path, tiles: list[Tile], proposals: list[Proposal], label_sets: dict[str, dict]):
        self.data, self.tiles, self.proposals, self.label_sets = data, tiles, proposals, label_sets

    def describe(self) -> dict:
        return {"kind": self.kind, "tiles": [t.name for t in self.tiles], "reviewed_tiles": sorted(self.label_sets)}

    def load(self, model_pixel_size_um: float):
        from hubseg.geometry import rasterize_geometry
        from hubseg.labels import validate_label_set
        from hubseg.training.augment import IGNORE_INDEX
        from hubseg.training.sources import ImageFolderSource

        images = ImageFolderSource(self.data, SOURCE_PIXEL_SIZE_UM, names=[t.name for t in self.tiles]).load(model_pixel_size_um)
        for image in images:
            shape, ds = image.label.shape, image.downsample

            def raster(geometries):
                mask = np.zeros(shape, bool)
                for geometry in geometries:
                    mask |= rasterize_geometry(geometry, shape, (0.0, 0.0), ds)
                return mask

            def centre(geometry):
                return (geometry.centroid.x / ds, geometry.centroid.y / ds)

            labels = validate_label_set(self.label_sets[image.name]) if image.name in self.label_sets else None
            region_union = labels.region_union if labels is not None else None
            pseudo = [p.geometry for p in self.proposals if p.tile == image.name
                      and (region_union is None or not region_union.contains(p.geometry.representative_point()))]
            label = raster(pseudo).astype(np.uint8)  # everything else: background (v0 saw nothing there)
            positives = [centre(g) for g in pseudo]
            if len(positives) > MAX_PSEUDO_CENTRES_PER_TILE:
                keep = np.random.default_rng(0).choice(len(positives), MAX_PSEUDO_CENTRES_PER_TILE, replace=False)
                positives = [positives[i] for i in sorted(keep)]
            negatives = []
            if labels is not None:
                positive = raster(labels.positives)
                label[raster(labels.regions)] = 0
                label[positive] = 1
                label[raster(labels.ignored)] = IGNORE_INDEX
                label[raster(labels.negatives) & ~positive] = 0
                positives += [centre(g) for g in labels.positives]
                negatives = [centre(g) for g in labels.negatives]
            image.label = label
            image.positives, image.negatives = positives, negatives
            image.source = f"{image.source} (pseudo-labels{' + review' if labels is not None else ''})"
        return images


# --- training and evaluation --------------------------------------------------------------------------
def train_config(args, **overrides):
    from hubseg.training.trainer import TrainConfig

    base = dict(family="hitl-bench", pixel_size_um=args.pixel_size_um, tile_size=256, train_tile_size=192, batch_size=8,
                val_fraction=0.0, seed=args.seed, device="cpu", num_threads=args.threads, random_tiles=0.5)
    base.update(overrides)
    return TrainConfig(**base)


def evaluate(registry, name: str, test_images) -> dict:
    from hubseg.training.evaluate import evaluate_images

    return evaluate_images(registry.load(name, device="cpu"), test_images).summary()


def fmt(value, digits=3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(report: dict) -> str:
    lines = []
    s = report["setup"]
    lines.append(f"hubseg HITL benchmark — AIDPATH PAS tiles, operating pixel size {s['pixel_size_um']} µm/px "
                 f"(tiles at {SOURCE_PIXEL_SIZE_UM} µm/px), seed {s['seed']}, {s['threads']} torch thread(s), "
                 f"v0 {s['epochs_v0']} epochs from ImageNet lite0, fine-tunes {s['epochs_ft']} epochs{' [QUICK]' if s['quick'] else ''}")
    for part in "ABC":
        info = report["split"][part]
        lines.append(f"  split {part} ({info['role']}): {len(info['tiles'])} tiles, {info['glomeruli']} glomeruli: {' '.join(info['tiles'])}")
    r = report["ranking"]
    lines.append("")
    lines.append(f"Review list on B from v0: {r['objects']} objects, {r['tp']} TP, {r['fp']} FP, {r['badly_shaped']} badly shaped "
                 f"(IoU < {GOOD_SHAPE_IOU}), {r['errors']} errors; {report['b_missed']} glomeruli missed (not in the list)")
    lines.append(f"AUROC energy TP vs FP: {fmt(r['auroc_energy_tp_vs_fp'])}   (probability: {fmt(r['auroc_probability_tp_vs_fp'])})")
    lines.append("")
    lines.append("| share of errors found in the first … of the list | energy order | probability order | random order |")
    lines.append("|---|---|---|---|")
    for key, row in r["share_of_errors_found"].items():
        lines.append(f"| {key} | {fmt(row['energy'], 2)} | {fmt(row['probability'], 2)} | {fmt(row['random'], 2)} |")
    lines.append("")
    lines.append("| model | review order | K shown | decisions (acc/corr/rej/drawn) | Dice on C | F1 on C | P / R | TP/FP/FN | ΔDice | ΔF1 |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    v0 = report["models"][0]["test"]
    for row in report["models"]:
        t = row["test"]
        decided = "—" if row["k"] is None else f"{row['decisions']} ({row['accepted']}/{row['corrected']}/{row['rejected']}/{row['drawn']})"
        delta_d = "" if row["k"] is None else f"{t['dice'] - v0['dice']:+.3f}"
        delta_f = "" if row["k"] is None else f"{t['f1'] - v0['f1']:+.3f}"
        shown = fmt(row["k"]) if row.get("k_requested") in (None, row["k"]) else f"{row['k_requested']} → {row['k']} (whole list)"
        lines.append(f"| {row['label']} | {row['order'] or '—'} | {shown} | {decided} | {t['dice']:.3f} | {t['f1']:.3f} | "
                     f"{t['precision']:.2f} / {t['recall']:.2f} | {t['tp']}/{t['fp']}/{t['fn']} | {delta_d} | {delta_f} |")
    lines.append("")
    lines.append(f"Wall time {report['seconds']['total']:.0f} s (v0 training {report['seconds']['v0']:.0f} s, "
                 f"{len(report['models']) - 1} fine-tunes {report['seconds']['fine_tunes']:.0f} s).")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import train

    if not (args.data / "images").is_dir():
        print(f"hitl_benchmark: error: AIDPATH data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hubseg-hitl-"))
    registry = ModelRegistry(workdir / "data")
    tiles = load_tiles(args.data)
    parts = split_tiles(tiles, args.seed)
    by_name = {t.name: t for t in tiles}
    roles = {"A": "train v0", "B": "predict + review", "C": "held-out test"}
    report = {
        "setup": {"pixel_size_um": args.pixel_size_um, "seed": args.seed, "threads": args.threads, "epochs_v0": args.epochs_v0,
                  "epochs_ft": args.epochs_ft, "ks": args.ks, "quick": args.quick, "good_shape_iou": GOOD_SHAPE_IOU,
                  "region_margin_um": REGION_MARGIN_UM, "source_pixel_size_um": SOURCE_PIXEL_SIZE_UM},
        "split": {k: {"role": roles[k], "tiles": [t.name for t in v], "glomeruli": sum(len(t.truth) for t in v)}
                  for k, v in parts.items()},
        "seconds": {},
    }
    names = {k: [t.name for t in v] for k, v in parts.items()}
    log = lambda message: print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)  # noqa: E731

    log(f"training v0 on A ({len(names['A'])} tiles, {args.epochs_v0} epochs)")
    t0 = time.perf_counter()
    v0 = train(train_config(args, epochs=args.epochs_v0, lr=2e-3, imagenet=True, encoder="timm-tf_efficientnet_lite0"),
               [ImageFolderSource(args.data, SOURCE_PIXEL_SIZE_UM, names=names["A"])], registry)
    report["seconds"]["v0"] = time.perf_counter() - t0
    test_images = ImageFolderSource(args.data, SOURCE_PIXEL_SIZE_UM, names=names["C"]).load(args.pixel_size_um)
    models = [{"label": f"v0 ({v0.name})", "name": v0.name, "order": None, "k": None, "test": evaluate(registry, v0.name, test_images)}]
    log(f"v0 on C: {models[0]['test']}")

    proposals = propose(registry.load(v0.name, device="cpu"), parts["B"])
    matched_truth = {(p.tile, p.truth_index) for p in proposals if p.tp}
    report["b_missed"] = sum(1 for t in parts["B"] for i in range(len(t.truth)) if (t.name, i) not in matched_truth)
    report["ranking"] = ranking_quality(proposals, args.seed)
    report["proposals"] = [{"tile": p.tile, "energy": round(p.energy, 4), "probability": round(p.probability, 4),
                            "iou": round(p.iou, 3)} for p in proposals]
    log(f"B: {len(proposals)} proposals, ranking {json.dumps(report['ranking'])}")

    orders = review_orders(proposals, args.seed)
    runs = [(0, None)] + [(k, order) for k in args.ks for order in ("energy", "random")]
    t0 = time.perf_counter()
    for k, order in runs:
        outcome = simulate_review(by_name, proposals, orders[order] if order else [], k, v0.name)
        source = PseudoLabelSource(args.data, parts["B"], proposals, dict(outcome.label_sets))
        log(f"fine-tune K={k} {order or 'pseudo-labels only'}: {outcome.decisions} decisions")
        card = train(train_config(args, base_model=v0.name, epochs=args.epochs_ft, lr=1e-3),
                     [ImageFolderSource(args.data, SOURCE_PIXEL_SIZE_UM, names=names["A"]), source], registry)
        row = {"label": f"v1 ({card.name})", "name": card.name, "order": order, "k": outcome.reviewed, "k_requested": k,
               "decisions": outcome.decisions, "accepted": outcome.accepted, "corrected": outcome.corrected,
               "rejected": outcome.rejected, "drawn": outcome.drawn, "test": evaluate(registry, card.name, test_images)}
        if k == 0:
            row["label"] = f"v1 pseudo-labels only ({card.name})"
        models.append(row)
        log(f"  -> C {row['test']}")
    report["seconds"]["fine_tunes"] = time.perf_counter() - t0
    report["models"] = models
    report["seconds"]["total"] = time.perf_counter() - started
    print(render(report))
    write_json_report(report, args.json)
    return 0


def write_json_report(report: dict, target: str | None) -> None:
    """``--json -`` prints the report as JSON, ``--json FILE`` writes it there, no ``--json`` does nothing."""
    if not target:
        return
    text = json.dumps(report, indent=1, default=float)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
