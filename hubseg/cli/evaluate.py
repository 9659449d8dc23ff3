"""``hubseg evaluate``: pixel Dice and instance P/R/F1 (IoU > 0.5), all and gated (the review-score gate when
the card has a review model, else the energy gate), and the AUROCs of energy and of the review score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hubseg.cli.detect import ProgressBar, add_model_arguments, detection_options, load_model


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(report: dict) -> str:
    """The report as a table; image names are printed in full (the column widens to the longest)."""
    gated = report["gated"] is not None
    width = max([len("overall"), len("image")] + [len(entry["image"]) for entry in report["images"]])
    header = f"{'image':<{width}} {'obj':>4} {'true':>4} {'TP':>4} {'FP':>4} {'FN':>4} {'Dice':>6} {'P':>6} {'R':>6} {'F1':>6}"
    if gated:
        header += f" {'gated P':>8} {'gated R':>8} {'gated F1':>8}"
    lines = [header, "-" * len(header)]

    def row(name, entry, objects="", true=""):
        line = (f"{name:<{width}} {objects:>4} {true:>4} {entry['tp']:>4} {entry['fp']:>4} {entry['fn']:>4} "
                f"{_fmt(entry['dice']):>6} {_fmt(entry['precision']):>6} {_fmt(entry['recall']):>6} {_fmt(entry['f1']):>6}")
        if gated:
            g = entry["gated"]
            line += f" {_fmt(g['precision']):>8} {_fmt(g['recall']):>8} {_fmt(g['f1']):>8}"
        return line

    for entry in report["images"]:
        lines.append(row(entry["image"], entry, entry["objects"], entry["true_objects"]))
    lines.append("-" * len(header))
    lines.append(row("overall", report))
    auroc = report["energy_auroc"]
    lines.append(
        f"model {report['model']['name']}; instance matching at IoU > 0.5; energy AUROC (TP vs FP): "
        f"{_fmt(auroc) if auroc is not None else 'n/a (needs both TP and FP objects)'}; "
        + (f"review score AUROC {_fmt(report['review_score_auroc'])}; " if report.get("review_score_auroc") is not None else "")
        + f"review order by {report['review_order']}; "
        + (f"gated = above the {report['gate']['kind']} gate (cutoff {report['gate']['cutoff']})" if gated
           else "model card has no gate (gated figures n/a)")
    )
    return "\n".join(lines)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Dice and instance P/R/F1 (all and gated) against ground-truth masks",
        description="Run detection on every image in IMAGES_DIR that has a mask of the same name in MASKS_DIR "
        "(non-zero = glomerulus, or red on black) and print per-image and overall pixel Dice, instance "
        "precision/recall/F1 at IoU > 0.5 (one-to-one), the same for objects above the gate (the review score's "
        "when the model card has a review model, else energy's), and the AUROCs of energy and review score of true "
        "vs false positive objects.",
    )
    parser.add_argument("images_dir", metavar="IMAGES_DIR")
    parser.add_argument("masks_dir", metavar="MASKS_DIR")
    parser.add_argument("--pixel-size", type=float, required=True, metavar="UM", help="pixel size of the images in µm")
    add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from hubseg.cli.checks import pixel_size_option
    from hubseg.evaluation import evaluate_folder, find_pairs  # torch: only once the flags are known to be good

    pixel_size = pixel_size_option(args.pixel_size, "--pixel-size", "evaluate")
    options = detection_options(args)
    options.validate()
    find_pairs(Path(args.images_dir), Path(args.masks_dir))  # fail fast, before the slow model load
    model = load_model(args)
    bar = ProgressBar("evaluate", enabled=not args.quiet, unit="image")
    try:
        report = evaluate_folder(args.images_dir, args.masks_dir, model, pixel_size, options, progress=bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    sys.stdout.flush()
    return 0
