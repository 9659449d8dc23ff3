#!/usr/bin/env python
"""Single model vs ensemble on the AIDPATH tiles, out of fold (the measurement behind docs/models.md's decision).

For each of k outer folds (the split of ``train_default.py``) ``--members`` models are trained on the other
folds with seeds 0..M-1 and the recipe of ``train_default.py`` shortened to ``--epochs``; the *single* model is
the seed-0 member, so single and ensemble have the same per-model training budget. On the held-out tiles both are
scored with the product's detection path (instance F1 at IoU > 0.5, all objects and confident objects under an
out-of-fold energy gate), the energy AUROC of true vs false objects, and for the ensemble the AUROC of both
agreement definitions (:mod:`hubseg.agreement`).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_ensemble.py train      # the fold models
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_ensemble.py evaluate   # the table (JSON)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hubseg.models import ModelRegistry  # noqa: E402
from hubseg.training.sources import ImageFolderSource  # noqa: E402
from hubseg.training.trainer import TrainConfig, fit, prepare_model  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "pas-glomeruli-aidpath"
FAMILY = "bench-ensemble"


def folds_of(images, k: int, seed: int = 0) -> list[list[str]]:
    """The outer folds of train_default.py (same permutation, same seed)."""
    order = np.random.default_rng(seed).permutation(len(images))
    return [sorted(images[i].name for i in order[j::k]) for j in range(k)]


def member_name(fold: int, seed: int) -> str:
    return f"{FAMILY}-fold{fold}-seed{seed}-v1"


def train_members(args, images, registry, log) -> None:
    for fold, held_out in enumerate(folds_of(images, args.folds), start=1):
        train_images = [i for i in images if i.name not in held_out]
        for seed in range(args.members):
            name = member_name(fold, seed)
            if name in registry.names():
                continue
            config = TrainConfig(family=FAMILY, encoder="timm-tf_efficientnet_lite0", imagenet=True,
                                 pixel_size_um=1.5, tile_size=256, train_tile_size=192, epochs=args.epochs,
                                 batch_size=8, lr=2e-3, random_tiles=1.0, val_every=args.epochs, seed=seed,
                                 device="cpu", num_threads=args.threads, augmentation="default")
            module, card, _ = prepare_model(config)
            result = fit(config, train_images, [], module, card)
            card = result.card
            card.name = name
            card.provenance = {"recipe": f"scripts/bench_ensemble.py fold {fold} seed {seed}, {args.epochs} epochs",
                               "held_out": held_out, "training_seconds": result.seconds}
            registry.register(result.state_dict, card, dtype=torch.float16)
            log(f"trained {name}: {result.iterations} iterations in {result.seconds}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=("train", "evaluate"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--pixel-size", type=float, default=0.4942)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", default=str(REPO / "out" / "bench_ensemble"))
    parser.add_argument("--report", default=None, help="JSON report path (default: <work>/report.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    images = ImageFolderSource(args.data, args.pixel_size).load(1.5)
    work = Path(args.work)
    registry = ModelRegistry(work, shipped_dir=work / "none")
    if args.phase == "train":
        train_members(args, images, registry, log)
        return 0
    from bench_ensemble_eval import evaluate  # noqa: E402  (written beside this script)

    report = evaluate(args, images, registry, folds_of(images, args.folds), member_name, log)
    path = Path(args.report or work / "report.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["table"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
