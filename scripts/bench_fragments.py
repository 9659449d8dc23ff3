#!/usr/bin/env python
"""Fragments on diseased-looking tissue: the AIDPATH tiles (glomerulosclerosis data set) and shifted copies.

For each tile and condition the shipped model predicts its maps once with the product's inference defaults, and
instances are extracted from them under two rules (no gate: every object counts):

- ``before``: touching split with no size floor on its parts (``min_part_area_um2 = 0``) and no fragment merge,
- ``now``: the product's rules — split parts glomerulus-sized (the card's reference area, else
  :data:`hubseg.splitting.DEFAULT_MIN_PART_AREA_UM2`) and objects mostly inside another's footprint merged
  (:mod:`hubseg.fragments`).

Reported per condition: objects, TP / FP / FN at IoU > 0.5 (one-to-one, greedy by IoU), F1, and the
**fragments**: false objects with at least half their area inside a true glomerulus (the maintainers' count).
Conditions (scripts/bench_robustness.py's shifts that keep the tile's geometry): none, hed-0.2, hed-0.3, blur-2,
jpeg-30.

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python scripts/bench_fragments.py [--conditions none,hed-0.3]
        [--model out/bench_adaptation/models/models/adapt-v0-s0-e40-v1
         --held-out-of out/bench_adaptation/models/models/adapt-v0-s0-e40-v1/bench_adaptation.json]
"""

from __future__ import annotations

import argparse
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


def detect_both(model, rgb, pixel_size) -> dict[str, list]:
    """Objects under both rules from one set of maps (the product's inference defaults, no gate)."""
    from hubseg.inference import predict_maps
    from hubseg.instances import DEFAULT_MIN_AREA_UM2, DEFAULT_SIMPLIFY_UM, extract_instances
    from hubseg.pipeline import DetectionOptions, resolve_region
    from hubseg.slide import ArraySlide
    from hubseg.splitting import SplitOptions, split_options_for

    slide = ArraySlide(rgb, pixel_size)
    options = DetectionOptions(use_energy_gate=False, tissue_detection=False)
    maps = predict_maps(slide, model, resolve_region(slide), options)
    try:
        common = dict(threshold=float(model.card.threshold), min_area_um2=DEFAULT_MIN_AREA_UM2,
                      simplify_um=DEFAULT_SIMPLIFY_UM)
        return {"before": extract_instances(maps, split=SplitOptions(min_part_area_um2=0.0), merge_fragments=False, **common),
                "now": extract_instances(maps, split=split_options_for(model.card), **common)}
    finally:
        maps.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=robustness.DEFAULT_DATASET)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="hubseg-pas-glomeruli-v1",
                        help="model name or folder (default: the shipped model, which was trained on these tiles)")
    parser.add_argument("--held-out-of", type=Path, metavar="JSON",
                        help="skip the tiles listed under 'tiles' in this JSON (bench_adaptation's v0 stamp "
                        "bench_adaptation.json: the tiles that v0 was trained on), so the model is scored out of sample")
    args = parser.parse_args(argv)
    import torch

    from hubseg import metrics
    from hubseg.models.registry import ModelRegistry

    torch.set_num_threads(1)
    model = ModelRegistry(robustness.REPO_ROOT / "out" / "bench_fragments_data").load(args.model, device="cpu")
    tiles = hitl.load_tiles(args.data)
    if args.held_out_of:
        import json

        seen = set(json.loads(args.held_out_of.read_text())["tiles"])
        tiles = [t for t in tiles if t.name not in seen]
    print(f"model {model.card.name}, {len(tiles)} tiles, {sum(len(t.truth) for t in tiles)} true glomeruli")
    print("| condition | rule | objects | TP | FP | FN | F1 | fragments (FP mostly inside a true glomerulus) |")
    print("|---|---|---|---|---|---|---|---|")
    for condition in args.conditions.split(","):
        _, shift = robustness.make_shift(condition, args.seed)
        totals = {rule: {"objects": 0, "tp": 0, "fp": 0, "fn": 0, "fragments": 0} for rule in ("before", "now")}
        for tile in tiles:
            shifted = shift(tile.rgb, robustness.DATASET_PIXEL_SIZE_UM, tile.name)
            for rule, objects in detect_both(model, shifted.rgb, shifted.pixel_size_um).items():
                for key, value in score(objects, tile.truth).items():
                    totals[rule][key] += value
        for rule, total in totals.items():
            f1 = metrics.f1(total["tp"], total["fp"], total["fn"])
            print(f"| {condition} | {rule} | {total['objects']} | {total['tp']} | {total['fp']} | {total['fn']} | "
                  f"{f1:.3f} | {total['fragments']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
