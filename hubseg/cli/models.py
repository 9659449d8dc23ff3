"""``hubseg models list|show|activate|import|delete``: the model registry from the command line."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, show, activate, import and delete models",
        description="Models are versioned folders (card.json + weights.safetensors): shipped ones inside the "
        "package, your own in <data-dir>/models. One is active (used when --model is not given).",
    )
    parser.add_argument("--data-dir", help="hubseg data directory (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
    # --data-dir is accepted after the action too (``hubseg models import X.pth ... --data-dir DIR``), like
    # every other subcommand; SUPPRESS keeps a value given before the action.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="hubseg data directory (default: $HUBSEG_DATA_DIR or ~/.hubseg)")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", parents=[common], help="all models, the active one marked with *")
    listing.add_argument("--json", action="store_true", help="print the cards as JSON")

    show = actions.add_parser("show", parents=[common], help="print a model's card")
    show.add_argument("name", nargs="?", help="model name or folder (default: the active model)")

    activate = actions.add_parser("activate", parents=[common], help="make a model the default for detection")
    activate.add_argument("name")

    imp = actions.add_parser(
        "import",
        parents=[common],
        help="import a deepflash2 or TU-Berlin checkpoint (.pth) as a new model",
        description="Convert a foreign PyTorch checkpoint once into hubseg's format (safetensors + card). "
        "Read with weights_only=True: nothing is unpickled beyond tensors and plain containers.",
    )
    imp.add_argument("file", help="the checkpoint (.pth)")
    imp.add_argument("--format", required=True, choices=("deepflash2", "tuberlin"), dest="checkpoint_format")
    imp.add_argument("--name", required=True, help="new model name, e.g. deepflash2-kidney-v1")
    imp.add_argument("--pixel-size", type=float, help="operating µm/px (default: deepflash2 1.5, tuberlin 0.5)")
    imp.add_argument("--tile-size", type=int, help="inference tile size (default: deepflash2 512, tuberlin 1024)")
    imp.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    imp.add_argument("--description", default="", help="free text stored in the card's provenance")
    imp.add_argument("--activate", action="store_true", help="make it the active model")

    delete = actions.add_parser(
        "delete", parents=[common],
        help="delete one of your model versions (never a shipped or the active model)",
        description="Remove a model version you trained or imported from <data-dir>/models. Shipped models and "
        "the active model are refused: activate another model first.",
    )
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def _row(card, active: str) -> str:
    gate = card.energy_gate or {}
    cv = (card.metrics or {}).get("cross_validation", {}).get("mean") or (card.metrics or {}).get("validation") or {}
    has_f1 = isinstance(cv, dict) and cv.get("f1") is not None and cv.get("dice") is not None  # None: undefined
    figures = f"dice {cv['dice']:.3f} f1 {cv['f1']:.3f}" if has_f1 else ""
    mark = "*" if card.name == active else " "
    kind = card.architecture.get("encoder") or card.architecture.get("kind")
    gate_text = f"gate {gate['cutoff']:.3g}" if gate.get("cutoff") is not None else "NO GATE"
    review = card.review_model or {}
    if review.get("cutoff") is not None:  # the review score decides (hubseg.gating.choose_gate)
        gate_text = f"review score ≥ {review['cutoff']:.2f} (AUROC {review.get('auroc_oof')})"
    return f"{mark} {card.name:<32} {kind:<28} {card.pixel_size_um:>5.2f} µm/px  {figures}  {gate_text}".rstrip()


def run(args: argparse.Namespace) -> int:
    from hubseg.models.registry import ModelRegistry

    registry = ModelRegistry(args.data_dir)
    action = args.models_command
    if action == "list":
        cards = registry.list()
        if args.json:
            print(json.dumps([c.to_dict() for c in cards], indent=2, ensure_ascii=False))
            return 0
        active = registry.active_name()
        if not cards:
            print("no models registered")
        for card in cards:
            print(_row(card, active))
        return 0
    if action == "show":
        card = registry.card(args.name)
        print(json.dumps({**card.to_dict(), "path": str(registry.path(card.name if args.name is None else args.name))},
                         indent=2, ensure_ascii=False))
        return 0
    if action == "activate":
        card = registry.activate(args.name)
        print(f"active model: {card.name}")
        return 0
    if action == "delete":
        if not args.yes and sys.stdin.isatty():
            answer = input(f"delete model {args.name!r} from {registry.user_dir}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        path = registry.delete(args.name)
        print(f"deleted model {args.name} ({path})")
        return 0
    if action == "import":
        from hubseg.cli.checks import pixel_size_option
        from hubseg.models.importers import import_checkpoint

        pixel_size_option(args.pixel_size, "--pixel-size", "models import")

        card = import_checkpoint(
            args.file,
            args.checkpoint_format,
            registry,
            name=args.name,
            pixel_size_um=args.pixel_size,
            tile_size=args.tile_size,
            threshold=args.threshold,
            description=args.description,
        )
        if args.activate:
            registry.activate(card.name)
        print(f"imported {card.name} ({args.checkpoint_format}) into {registry.path(card.name)}")
        return 0
    raise AssertionError(action)  # argparse restricts the choices
