"""``hubseg adapt``: energy-gated self-training on a lab's own unlabelled images."""

from __future__ import annotations

import argparse

from hubseg.cli.checks import add_training_run_options


def add_teacher_cap_options(parser) -> None:
    """The teacher-pass cap (``hubseg adapt`` and ``hubseg batch --adapt``)."""
    from hubseg.training.teacher_tiles import DEFAULT_MAX_TEACHER_TILES, DEFAULT_TILES_PER_SLIDE, WINDOW_TILES

    parser.add_argument("--tiles-per-slide", type=int, default=DEFAULT_TILES_PER_SLIDE, metavar="N",
                        help=f"teacher pass: at most N tissue tiles (2 × 2 model tiles each) per slide, spread across "
                        f"it (default {DEFAULT_TILES_PER_SLIDE})")
    parser.add_argument("--max-teacher-tiles", type=int, default=DEFAULT_MAX_TEACHER_TILES, metavar="N",
                        help=f"teacher pass: at most N tissue tiles over all slides; fewer per slide when needed "
                        f"(default {DEFAULT_MAX_TEACHER_TILES})")
    parser.add_argument("--teacher-tile", type=int, default=WINDOW_TILES, metavar="K",
                        help=f"side of a teacher tile in model tiles (default {WINDOW_TILES}: 768 µm for the shipped "
                        "model); a teacher tile should be several glomeruli wide")


def teacher_cap(args):
    from hubseg.training.teacher_tiles import TeacherCap

    cap = TeacherCap(per_slide=args.tiles_per_slide, max_total=args.max_teacher_tiles, window_tiles=args.teacher_tile)
    cap.validate()
    return cap


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a model to unlabelled slides by energy-gated self-training; registers a NEW model version",
        description="The teacher (the active model, or --model) detects on the unlabelled images; confident objects "
        "become glomerulus targets, uncertain ones and everything near them are ignored, and only low-probability "
        "tissue far from any object becomes background. A student initialised from the teacher trains on these "
        "targets (mixed with --labels) and is registered as <family>-v<N+1>; with --rounds N the student becomes "
        "the next teacher. Nothing is overwritten; the card records the images (paths + identity hashes), "
        "pseudo-label counts, the ignored fraction, the student's energy gate and its safety check. The teacher "
        "sees at most --tiles-per-slide tissue tiles per slide (spread across it) and --max-teacher-tiles in all; every "
        "5th tile is held back, and a student that disagrees with its teacher there beyond the documented bounds "
        "is flagged and not activated by --activate.",
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
    parser.add_argument("--max-tiles", type=int, default=None,
                        help="refuse an image whose teacher pass would need more tiles than this (default "
                        "60000, the limit hubseg serve applies)")
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
    add_teacher_cap_options(parser)
    add_training_run_options(parser, activate_help="make the final model active unless its safety check flagged it "
                             "(then activate it explicitly: hubseg models activate NAME)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hubseg.errors import InvalidInputError
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.adapt_report import safe_to_activate
    from hubseg.training.pseudolabels import PseudoLabelRules
    from hubseg.training.selftrain import SelfTrainConfig, expand_images, self_train, unreviewed_project_images
    from hubseg.training.sources import open_source
    from hubseg.training.trainer import TrainConfig

    if bool(args.images) == bool(args.project):
        raise InvalidInputError("give either unlabelled IMAGES or --project PROJECT.qpproj (not both, not neither)")
    from hubseg.cli.checks import pixel_size_option

    args.pixel_size = pixel_size_option(args.pixel_size, command="adapt")
    registry = ModelRegistry(args.data_dir)
    if args.project:
        images = unreviewed_project_images(args.project)
        if not images:
            raise InvalidInputError(f"{args.project} has no unreviewed images whose files this machine can read")
    else:
        images = expand_images(args.images)
    check_image_budgets(images, registry.card(args.model or registry.active_name()), args.pixel_size, args.max_tiles)
    labels = [open_source(s, args.pixel_size) if Path(s).is_dir() else open_source(s) for s in args.labels]
    config = SelfTrainConfig(
        rounds=args.rounds,
        rules=PseudoLabelRules(margin_um=args.margin, background_probability=args.background_probability),
        pixel_size_um=args.pixel_size,
        iterations=args.iterations,
        epochs=args.epochs,
        cap=teacher_cap(args),
        train=TrainConfig(lr=args.lr, random_tiles=1.0, batch_size=args.batch_size, seed=args.seed,
                          device=args.device, num_threads=args.threads, freeze_bn=args.freeze_bn),
    )
    progress, close = progress_bars()
    try:
        cards = self_train(images, registry, config, base_model=args.model, label_sources=labels, name=args.name,
                           progress=progress)
    finally:
        close()
    final = cards[-1]
    activated = bool(args.activate) and safe_to_activate(final)
    if activated:
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
    print(safety_line(final, args.activate, activated))
    return 0


def check_image_budgets(images, card, pixel_size_um, max_tiles: int | None) -> None:
    """Every unlabelled image, whole, within the tile budget at the teacher's scale (the rule detections and the
    server's self-training obey), before the teacher pass starts: a wrong pixel size fails in seconds, not hours."""
    from hubseg.errors import InvalidInputError
    from hubseg.limits import DEFAULT_MAX_TILES, check_slide_budget
    from hubseg.slide import open_slide

    max_tiles = DEFAULT_MAX_TILES if max_tiles is None else max_tiles
    if max_tiles < 1:
        raise InvalidInputError(f"--max-tiles must be >= 1, got {max_tiles}")
    for item in images:
        path, own = item if isinstance(item, tuple) else (item, None)
        slide = open_slide(path, own or pixel_size_um)
        try:
            _, _, width, height = slide.bounds
            check_slide_budget(slide.pixel_size_um, (width, height), card, max_tiles, f"{path} (the whole image)",
                               "hubseg adapt --max-tiles")
        finally:
            slide.close()


def safety_line(card, asked: bool, activated: bool) -> str:
    """One line on the safety check of the final model and what happened to activation."""
    safety = card.provenance.get("self_training", {}).get("safety") or {}
    verdict = safety.get("verdict", "unchecked")
    student, teacher = safety.get("student") or {}, safety.get("teacher") or {}
    text = (f"safety check on {safety.get('held_back_images', 0)} held-back tile(s): {verdict}; student recall of the "
            f"teacher's {safety.get('teacher_confident_objects', 0)} confident objects {student.get('recall')} (teacher "
            f"{teacher.get('recall')}), pixel agreement {student.get('dice')} (teacher {teacher.get('dice')})")
    if verdict == "flagged":
        text += " — " + "; ".join(safety.get("reasons") or [])
        text += (f"; NOT activated (to use it anyway: hubseg models activate {card.name})" if asked
                 else "; do not activate it without checking its detections")
    elif activated:
        text += f"; activated {card.name}"
    return text


def progress_bars():
    """``(progress, close)``: one tqdm bar per phase (teacher, training, calibrating); tqdm gives the ETA."""
    from tqdm import tqdm

    from hubseg.training.adapt_report import parse_progress

    state = {"phase": None, "bar": None}

    def progress(done: int, total: int, message: str) -> None:
        parsed = parse_progress(message) or {"phase": message.split(":")[0], "round": 1, "rounds": 1}
        phase = f"round {parsed['round']}/{parsed['rounds']} {parsed['phase']}"
        if phase != state["phase"]:
            close()
            unit = {"teacher": "tile", "training": "epoch"}.get(parsed["phase"], "step")
            state["bar"] = tqdm(total=max(1, total), unit=unit, desc=phase)
            state["phase"] = phase
        bar = state["bar"]
        bar.total = max(1, total)
        bar.n = done
        detail = message.split(": ", 1)[-1]
        bar.set_postfix_str(detail[-60:])
        bar.refresh()

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None

    return progress, close
