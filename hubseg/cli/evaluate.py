"""``hubseg evaluate``: pixel Dice and instance P/R/F1 (IoU > 0.5), all and gated (the review-score gate when
the card has a review model, else the energy gate), and the AUROCs of energy and of the review score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from hubseg.cli.detect import ProgressBar, add_model_arguments, detection_options, load_model
from hubseg.errors import InvalidInputError, NotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_mask(path: Path) -> np.ndarray:
    """Boolean mask: red-on-black RGB masks → ``max(channel) > 127``; grey/binary → non-zero."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except OSError as error:
        raise InvalidInputError(f"cannot read mask {path}: {error}") from None
    if array.ndim == 3:
        array = array[:, :, :3]
        return array.max(axis=-1) > 127 if array.max() > 127 else array.max(axis=-1) > 0
    return array > 0


def find_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    if not images_dir.is_dir():
        raise NotFoundError(f"images folder not found: {images_dir}")
    if not masks_dir.is_dir():
        raise NotFoundError(f"masks folder not found: {masks_dir}")
    masks = {}
    for path in sorted(masks_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            masks.setdefault(path.name.split(".")[0], path)
    pairs = []
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.name.split(".")[0] in masks:
            pairs.append((path, masks[path.name.split(".")[0]]))
    if not pairs:
        raise InvalidInputError(
            f"no image in {images_dir} has a mask of the same name in {masks_dir} (images: {', '.join(IMAGE_SUFFIXES)})"
        )
    return pairs


def count_summary(counts) -> dict:
    """P/R/F1 with ``None`` where undefined (precision with no predicted objects, recall with no true ones,
    F1 with neither): a 0.0 there would read as a measured failure."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "tp": tp, "fp": fp, "fn": fn,
    }


def evaluate_folder(images_dir, masks_dir, model, pixel_size_um: float, options, progress=None) -> dict:
    """Evaluate ``model`` on image/mask pairs; returns the JSON-able report."""
    from hubseg.instances import rasterize_labels
    from hubseg.metrics import Counts, auroc, label_instances, match_instances
    from hubseg.pipeline import detect
    from hubseg.slide import open_slide

    pairs = find_pairs(Path(images_dir), Path(masks_dir))
    gate = model.card.energy_gate if isinstance(model.card.energy_gate, dict) else None
    review = model.card.review_model if isinstance(getattr(model.card, "review_model", None), dict) else None
    # the gate detection applies (pipeline.apply_energy_gate): the review score's when the card has one
    if review is not None and review.get("cutoff") is not None:
        applied = {"kind": "review score", "cutoff": review["cutoff"]}
    elif gate is not None and gate.get("cutoff") is not None:
        applied = {"kind": "energy", "cutoff": gate["cutoff"]}
    else:
        applied = None
    overall, gated_overall = Counts(), Counts()
    intersection_total = area_total = 0
    tp_energy, fp_energy, tp_score, fp_score = [], [], [], []
    images = []
    for index, (image_path, mask_path) in enumerate(pairs):
        truth = read_mask(mask_path)
        with open_slide(image_path, pixel_size_um=pixel_size_um) as slide:
            width, height = slide.dimensions
            if (height, width) != truth.shape:
                raise InvalidInputError(
                    f"mask {mask_path.name} is {truth.shape[1]}×{truth.shape[0]} but image {image_path.name} is {width}×{height}"
                )
            result = detect(slide, model, options=options)
        min_pixels = max(1, int(round(options.min_area_um2 / pixel_size_um**2)))
        true_labels = label_instances(truth, min_pixels=min_pixels)
        objects = result.objects
        pred_labels = rasterize_labels([o.geometry for o in objects], truth.shape)
        matching = match_instances(pred_labels, true_labels)
        matched_ids = set(int(i) for i, m in zip(matching.pred_ids, matching.pred_matched) if m)
        counts = Counts(matching.tp, len(objects) - matching.tp, matching.fn)
        overall.add(counts)
        for k, obj in enumerate(objects, start=1):
            (tp_energy if k in matched_ids else fp_energy).append(obj.mean_energy)
            if obj.review_score is not None:
                (tp_score if k in matched_ids else fp_score).append(obj.review_score)
        pred_mask = pred_labels > 0
        inter = int(np.logical_and(pred_mask, truth).sum())
        area = int(pred_mask.sum()) + int(truth.sum())
        intersection_total += inter
        area_total += area
        entry = {
            "image": image_path.name,
            "dice": 1.0 if area == 0 else 2.0 * inter / area,
            "objects": len(objects),
            "true_objects": int(matching.true_ids.size),
            **count_summary(counts),
            "gated": None,
        }
        if applied is not None:
            keep = [k for k, obj in enumerate(objects, start=1) if not obj.uncertain]
            gated_tp = sum(1 for k in keep if k in matched_ids)
            gated = Counts(gated_tp, len(keep) - gated_tp, int(matching.true_ids.size) - gated_tp)
            gated_overall.add(gated)
            entry["gated"] = count_summary(gated)
        images.append(entry)
        if progress:
            progress(index + 1, len(pairs), image_path.name)
    report = {
        "dice": 1.0 if area_total == 0 else 2.0 * intersection_total / area_total,
        **count_summary(overall),
        "gated": count_summary(gated_overall) if applied is not None else None,
        "gate": applied,
        "energy_gate": gate,
        "energy_auroc": auroc(tp_energy, fp_energy),
        "review_score_auroc": auroc(tp_score, fp_score) if review is not None else None,
        # the one score the review list, the #N labels and the overlay colours follow (hubseg.instances.review_values)
        "review_order": "review score" if tp_score or fp_score else "energy",
        "model": {"name": model.card.name, "version": int(model.card.version)},
        "pixel_size_um": float(pixel_size_um),
        "iou_threshold": 0.5,
        "images": images,
    }
    return report


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
