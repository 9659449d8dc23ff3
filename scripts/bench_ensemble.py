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
import time
from pathlib import Path

import numpy as np
import torch

from hubseg.models import ModelRegistry
from hubseg.training.sources import ImageFolderSource
from hubseg.training.trainer import TrainConfig, fit, prepare_model

try:
    from scripts import common
except ImportError:  # run as `python scripts/bench_ensemble.py`: this folder is sys.path[0], the repository root is not
    import common

REPO = common.REPO_ROOT
DATA = common.DEFAULT_DATASET
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


def _keep_agreement_measures() -> None:
    """Validation keeps each object's raw review features; add both agreement measures to them (this script only)."""
    import hubseg.review_score as review_score

    original = review_score.raw_features

    def with_measures(obj, *args, **kwargs):
        row = original(obj, *args, **kwargs)
        row.update({k: v for k, v in obj.extra.items() if k.startswith("agreement_")})
        return row

    review_score.raw_features = with_measures


def _figures(result, seconds: float) -> dict:
    """F1 of all objects, F1 of the confident ones under the F1-best energy cut-off on these (pooled held-out)
    objects, the energy AUROC (true vs false objects), and the out-of-fold AUROC of the default review score."""
    from hubseg import metrics
    from hubseg.review_score import DEFAULT_FEATURES, fit_review_model
    from hubseg.training.evaluate import gate_from_result

    gate = gate_from_result(result) or {}
    energies = np.asarray(result.energies)
    matched = np.asarray(result.matched, bool)
    reference = {"median": float(np.median(energies[matched])),
                 "scale": float(max(1e-6, np.subtract(*np.percentile(energies[matched], [75, 25]))))}
    review = fit_review_model(result.features, matched, reference, n_true=result.tp + result.fn)
    out = {**result.summary(), "f1_confident": gate.get("f1_gated"), "energy_auroc": gate.get("auroc"),
           "review_auroc_oof": review["auroc_oof"] if review else None, "objects": int(matched.size),
           "false_objects": int((~matched).sum()), "cpu_seconds": round(seconds, 1)}
    for measure in ("agreement_fraction", "agreement_std"):
        values = np.asarray([row.get(measure, np.nan) for row in result.features], float)
        if np.isfinite(values).all() and matched.any() and (~matched).any():
            out[f"{measure}_auroc"] = round(float(metrics.auroc(values[matched], values[~matched])), 4)
    if "agreement_std_auroc" in out:
        with_agreement = fit_review_model(result.features, matched, reference, n_true=result.tp + result.fn,
                                          features=tuple(DEFAULT_FEATURES) + ("agreement",))
        out["review_auroc_oof_with_agreement"] = with_agreement["auroc_oof"] if with_agreement else None
    return out


def evaluate(args, images, registry, log) -> dict:
    """Single (seed-0 member) and ensemble figures pooled over the folds whose members are all trained."""
    from hubseg.models.ensemble import EnsembleModel, ensemble_card
    from hubseg.training.evaluate import EvaluationResult, evaluate_image

    _keep_agreement_measures()
    pooled = {"single": EvaluationResult(), "ensemble": EvaluationResult()}
    singles = [EvaluationResult() for _ in range(args.members)]
    seconds = {"single": 0.0, "ensemble": 0.0}
    used = []
    for fold, held_out in enumerate(folds_of(images, args.folds), start=1):
        names = [member_name(fold, seed) for seed in range(args.members)]
        if not all(n in registry.names() for n in names):
            log(f"fold {fold}: members missing, skipped")
            continue
        used.append(fold)
        members = [registry.load(n, device="cpu") for n in names]
        ensemble = EnsembleModel(ensemble_card(f"{FAMILY}-fold{fold}-ensemble", [m.card for m in members]), members)
        val = [i for i in images if i.name in held_out]
        for seed, member in enumerate(members):
            t0 = time.process_time()  # CPU seconds: the shared machine's load does not enter
            for image in val:
                singles[seed].add(evaluate_image(member, image))
            if seed == 0:
                seconds["single"] += time.process_time() - t0
        t0 = time.process_time()
        for image in val:
            pooled["ensemble"].add(evaluate_image(ensemble, image))
        seconds["ensemble"] += time.process_time() - t0
        log(f"fold {fold} evaluated")
    pooled["single"] = singles[0]
    table = {name: _figures(result, seconds[name]) for name, result in pooled.items()}
    table["single_seeds"] = [_figures(result, 0.0) for result in singles]
    return {"folds": used, "members": args.members, "epochs": args.epochs, "table": table,
            "note": "single = the seed-0 member; confident F1 and the cut-off are fitted on the same pooled held-out "
                    "objects for both (optimistic alike); seconds: CPU seconds of detection on the held-out tiles (TTA "
                    "flips, 1 thread; the ensemble's include its agreement pass)"}


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
    report = evaluate(args, images, registry, log)
    path = Path(args.report or work / "report.json")
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
