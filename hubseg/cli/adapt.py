"""``hubseg adapt``: energy-gated self-training on a lab's own unlabelled images."""

from __future__ import annotations

import argparse

from hubseg.cli.checks import add_training_run_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a model to unlabelled slides by energy-gated self-training; registers a NEW model version",
        description="The teacher (the active model, or --model) detects on the unlabelled images; confident objects "
        "become glomerulus targets, uncertain ones and everything near them are ignored, and only low-probability "
        "tissue far from any object becomes background. A student initialised from the teacher trains on these "
        "targets (mixed with --labels) and is registered as <family>-v<N+1>; with --rounds N the student becomes "
        "the next teacher. Nothing is overwritten; the card records the images (paths + identity hashes), "
        "pseudo-label counts, the ignored fraction and the student's energy gate.",
    )
    parser.add_argument("images", nargs="*", help="unlabelled slides/images (files, or folders of images)")
    parser.add_argument("--project", help="a QuPath project (.qpproj): learn from its images nobody has reviewed yet")
    parser.add_argument("--model", help="the teacher / base model (name or folder; default: the active model)")
    parser.add_argument("--labels", nargs="+", default=[], metavar="LABELSET",
                        help="real training data mixed into every round (label-set .json, image+mask folder, HuBMAP)")
    parser.add_argument("--rounds", type=int, default=1, help="self-training rounds (default 1)")
    parser.add_argument("--name", help="name of the final model (default: <family>-v<N+1>)")
    parser.add_argument("--pixel-size", type=float,
                        help="level-0 µm/px of images without calibration (e.g. 0.5 for the HuBMAP JPEG tiles)")
    parser.add_argument("--margin", type=float, default=30.0,
                        help="background only farther than this many µm from any object or uncertain blob (default 30)")
    parser.add_argument("--background-probability", type=float,
                        help="teacher probability under which a pixel may be background (default: 0.2 × the card's threshold)")
    parser.add_argument("--iterations", type=int, default=800,
                        help="training iterations per round (default 800: ≈ 8 min on 2 CPU cores)")
    parser.add_argument("--epochs", type=int, help="fixed epochs per round instead of the iteration budget")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4: the student starts trained)")
    parser.add_argument("--freeze-bn", action="store_true",
                        help="keep the teacher's BatchNorm statistics in the student (protection against forgetting)")
    add_training_run_options(parser, activate_help="make the final model active")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from hubseg.errors import InvalidInputError
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.pseudolabels import PseudoLabelRules
    from hubseg.training.selftrain import SelfTrainConfig, expand_images, self_train, unreviewed_project_images
    from hubseg.training.sources import open_source
    from hubseg.training.trainer import TrainConfig

    if bool(args.images) == bool(args.project):
        raise InvalidInputError("give either unlabelled IMAGES or --project PROJECT.qpproj (not both, not neither)")
    registry = ModelRegistry(args.data_dir)
    if args.project:
        images = unreviewed_project_images(args.project)
        if not images:
            raise InvalidInputError(f"{args.project} has no unreviewed images whose files this machine can read")
    else:
        images = expand_images(args.images)
    labels = [open_source(s, args.pixel_size) if Path(s).is_dir() else open_source(s) for s in args.labels]
    config = SelfTrainConfig(
        rounds=args.rounds,
        rules=PseudoLabelRules(margin_um=args.margin, background_probability=args.background_probability),
        pixel_size_um=args.pixel_size,
        iterations=args.iterations,
        epochs=args.epochs,
        train=TrainConfig(lr=args.lr, random_tiles=1.0, batch_size=args.batch_size, seed=args.seed,
                          device=args.device, num_threads=args.threads, freeze_bn=args.freeze_bn),
    )
    state = {"phase": None, "bar": None}

    def progress(done: int, total: int, message: str) -> None:
        # one bar per phase ("round 1/1 teacher: image 2/5 ...", "... training: epoch 3/20 ..."): tqdm gives the ETA
        head, _, detail = message.partition(": ")
        phase = head if "teacher" not in head else f"{head} {detail.split(': ')[0]}"
        if phase != state["phase"]:
            if state["bar"] is not None:
                state["bar"].close()
            unit = "epoch" if "training" in head else "tile"
            state["bar"] = tqdm(total=max(1, total), unit=unit, desc=phase)
            state["phase"] = phase
        bar = state["bar"]
        bar.total = max(1, total)
        bar.n = done
        bar.set_postfix_str(detail.rsplit(": ", 1)[-1][:60])
        bar.refresh()

    try:
        cards = self_train(images, registry, config, base_model=args.model, label_sources=labels, name=args.name,
                           progress=progress)
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    final = cards[-1]
    if args.activate:
        registry.activate(final.name)
    for card in cards:
        record = card.provenance.get("self_training", {})
        gate = card.energy_gate or {}
        ignored = record.get("ignored_tissue_fraction")
        print(f"registered {card.name} at {registry.path(card.name)}: round {record.get('round')}, teacher "
              f"{record.get('teacher')}, {record.get('pseudo_positive_objects')} pseudo-positive and "
              f"{record.get('uncertain_objects')} uncertain objects, "
              f"{'n/a' if ignored is None else f'{100 * ignored:.0f}%'} of tissue ignored, "
              f"energy gate cutoff {gate.get('cutoff')}")
    return 0
