"""``hubseg train``: train or fine-tune a model on image+mask folders, label sets or the HuBMAP layout."""

from __future__ import annotations

import argparse

from hubseg.cli.checks import add_training_run_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a model; registers a NEW model version",
        description="Train on one or more sources: a folder with images/ and masks/ (needs --pixel-size), a "
        "hubseg-labelset/1 .json exported from QuPath (reviewed regions: unannotated = background, "
        "Rejected = negatives), or a HuBMAP Kaggle folder (train.csv + train/*.tiff). Fine-tuning from --model "
        "writes <family>-v<N+1>; nothing is overwritten.",
    )
    parser.add_argument("sources", nargs="+", help="training data: folders and/or label-set .json files")
    parser.add_argument("--model", help="fine-tune this registered model (name or folder); default: new model from ImageNet")
    parser.add_argument("--name", help="name of the new model (default: <family>-v<N+1>)")
    parser.add_argument("--family", help="family of a new model (default: the base model's, else hubseg-custom)")
    parser.add_argument("--pixel-size", type=float, help="µm/px of image folders / HuBMAP TIFFs")
    parser.add_argument("--model-pixel-size", type=float, help="operating µm/px of a new model (default 1.5)")
    parser.add_argument("--encoder", default="timm-tf_efficientnet_lite0", help="smp encoder of a new model")
    parser.add_argument("--no-imagenet", action="store_true", help="random init instead of the offline ImageNet weights")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: derived from the amount of data (≈ 4800 training tiles, 8–40 epochs; "
                        "≈ 6 min of optimisation on 2 CPU cores)")
    parser.add_argument("--encoder-lr-factor", type=float, default=1.0,
                        help="encoder learning rate = --lr × this (fine-tunes: < 1 protects what the base learned)")
    parser.add_argument("--freeze-bn", action="store_true", help="keep the base model's BatchNorm statistics")
    parser.add_argument("--ema-decay", type=float, default=0.0, help="keep an exponential moving average of the weights (0 = off)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-tile", type=int, default=192, help="training crop size (multiple of 32)")
    parser.add_argument("--augmentation", default="default", choices=("none", "light", "default", "strong"))
    parser.add_argument("--stain-normalization", choices=("none", "macenko", "reinhard"),
                        help="per-tile stain normalisation for training and validation, recorded in the card so "
                        "detection applies it too (default: the base model's setting, else none)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="images held out for validation")
    parser.add_argument("--val-every", type=int, default=5)
    add_training_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from hubseg.cli.checks import pixel_size_option
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.sources import open_source
    from hubseg.training.trainer import TrainConfig, train

    args.pixel_size = pixel_size_option(args.pixel_size, "--pixel-size", "train")
    args.model_pixel_size = pixel_size_option(args.model_pixel_size, "--model-pixel-size", "train")
    registry = ModelRegistry(args.data_dir)
    sources = [open_source(s, args.pixel_size) if Path(s).is_dir() else open_source(s) for s in args.sources]
    config = TrainConfig(
        name=args.name,
        family=args.family,
        base_model=args.model,
        encoder=args.encoder,
        imagenet=not args.no_imagenet,
        pixel_size_um=args.model_pixel_size,
        train_tile_size=args.train_tile,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        augmentation=args.augmentation,
        val_fraction=args.val_fraction,
        val_every=args.val_every,
        seed=args.seed,
        device=args.device,
        num_threads=args.threads,
        stain_normalization=args.stain_normalization,
        encoder_lr_factor=args.encoder_lr_factor,
        freeze_bn=args.freeze_bn,
        ema_decay=args.ema_decay,
    )
    bar = tqdm(total=config.epochs or 0, unit="epoch", desc="training")

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(message.split(" ", 2)[-1])
        bar.refresh()

    try:
        card = train(config, sources, registry, progress=progress)
    finally:
        bar.close()
    if args.activate:
        registry.activate(card.name)
    _print_result(card, registry)
    return 0


def _print_result(card, registry) -> None:
    """Where the model went, its validation figures and how its gate was calibrated."""
    import json
    import sys

    validation = (card.metrics or {}).get("validation")
    print(f"registered {card.name} at {registry.path(card.name)}")
    if validation:
        print("validation: " + json.dumps({k: validation[k] for k in ("dice", "precision", "recall", "f1")}))
    # How the gate was calibrated, always and loudly : a fine-tune is never silently ungated.
    calibration = (card.metrics or {}).get("calibration") or {}
    message = calibration.get("message") or "calibration: NONE — no energy gate"
    if calibration.get("method") == "held-out regions" and not str(calibration.get("rule", "")).startswith("thin"):
        print(message)
    else:
        print(f"WARNING: {message}", file=sys.stderr)
        print(message)
    if card.energy_gate:
        print(f"energy gate: cutoff {card.energy_gate['cutoff']} (AUROC {card.energy_gate.get('auroc')}; "
              f"{card.energy_gate.get('source', 'held-out objects')})")
    if card.review_model:
        review = card.review_model
        print(f"review score: cut-off {review.get('cutoff')}, AUROC {review.get('auroc_oof')} out of fold vs energy "
              f"alone {review.get('auroc_energy')} (n={review.get('n')}; {review.get('calibration_source')})")
