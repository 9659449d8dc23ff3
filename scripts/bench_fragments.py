#!/usr/bin/env python
"""Fragments on diseased-looking tissue: the AIDPATH tiles (glomerulosclerosis data set) and shifted copies.

For each tile and condition the shipped model detects with the product's defaults (no gate: every object
counts), under two instance rules:

- ``before``: touching split with no size floor on its parts (``min_part_area_um2 = 0``) and no fragment merge,
- ``now``: the product's rules — split parts glomerulus-sized (the card's reference area, else
  :data:`hubseg.splitting.DEFAULT_MIN_PART_AREA_UM2`) and objects mostly inside another's footprint merged
  (:mod:`hubseg.fragments`).

Reported per condition: objects, TP / FP / FN at IoU > 0.5 (one-to-one, greedy by IoU), F1, and the
**fragments**: false objects with at least half their area inside a true glomerulus (the maintainers' count).
Conditions (scripts/bench_robustness.py's shifts that keep the tile's geometry): none, hed-0.2, hed-0.3, blur-2,
jpeg-30.

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python scripts/bench_fragments.py [--conditions none,hed-0.3]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

try:
    from scripts import bench_robustness as robustness  # the shifts
    from scripts import hitl_benchmark as hitl  # tiles with true polygons
except ImportError:  # run as `python scripts/bench_fragments.py`: this folder is sys.path[0], the repository root is not
    import bench_robustness as robustness
    import hitl_benchmark as hitl

CONDITIONS = ("none", "hed-0.2", "hed-0.3", "blur-2", "jpeg-30")


def score(objects, truth) -> dict:
    """One-to-one matching at IoU > 0.5 (greedy, highest IoU first) and the fragment count."""
    pairs = []
    for i, obj in enumerate(objects):
        for j, glomerulus in enumerate(truth):
            if obj.geometry.intersects(glomerulus):
                iou = obj.geometry.intersection(glomerulus).area / obj.geometry.union(glomerulus).area
                if iou > 0.5:
                    pairs.append((iou, i, j))
    used_p, used_t = set(), set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    fragments = 0
    for i, obj in enumerate(objects):
        if i in used_p:
            continue
        inside = max((obj.geometry.intersection(g).area for g in truth), default=0.0)
        fragments += inside >= 0.5 * obj.geometry.area
    return {"objects": len(objects), "tp": len(used_p), "fp": len(objects) - len(used_p),
            "fn": len(truth) - len(used_t), "fragments": fragments}


def detect_with(model, rgb, pixel_size, rule: str):
    import hubseg.pipeline as pipeline
    from hubseg.instances import extract_instances
    from hubseg.slide import ArraySlide
    from hubseg.splitting import SplitOptions

    original = pipeline.extract_instances
    if rule == "before":
        pipeline.extract_instances = functools.partial(extract_instances, merge_fragments=False)
        original_split = pipeline.split_options_for
        pipeline.split_options_for = lambda card: SplitOptions(min_part_area_um2=0.0)
    try:
        options = pipeline.DetectionOptions(use_energy_gate=False, tissue_detection=False)
        return pipeline.detect(ArraySlide(rgb, pixel_size), model, options=options).objects
    finally:
        pipeline.extract_instances = original
        if rule == "before":
            pipeline.split_options_for = original_split


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=robustness.DEFAULT_DATASET)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    from hubseg import metrics
    from hubseg.models.registry import ModelRegistry

    torch.set_num_threads(1)
    model = ModelRegistry(robustness.REPO_ROOT / "out" / "bench_fragments_data").load("hubseg-pas-glomeruli-v1", device="cpu")
    tiles = hitl.load_tiles(args.data)
    print("| condition | rule | objects | TP | FP | FN | F1 | fragments (FP mostly inside a true glomerulus) |")
    print("|---|---|---|---|---|---|---|---|")
    for condition in args.conditions.split(","):
        _, shift = robustness.make_shift(condition, args.seed)
        shifted = [(tile, shift(tile.rgb, robustness.DATASET_PIXEL_SIZE_UM, tile.name)) for tile in tiles]
        for rule in ("before", "now"):
            total = {"objects": 0, "tp": 0, "fp": 0, "fn": 0, "fragments": 0}
            for tile, s in shifted:
                result = score(detect_with(model, s.rgb, s.pixel_size_um, rule), tile.truth)
                for key in total:
                    total[key] += result[key]
            f1 = metrics.f1(total["tp"], total["fp"], total["fn"])
            print(f"| {condition} | {rule} | {total['objects']} | {total['tp']} | {total['fp']} | {total['fn']} | "
                  f"{f1:.3f} | {total['fragments']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
