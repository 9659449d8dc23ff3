"""Folder evaluation against ground-truth masks: image/mask pairing, mask reading, pixel Dice, instance
P/R/F1 at IoU > 0.5 (all and above the gate detection applies) and the AUROCs of energy and review score.

``hubseg evaluate`` prints what :func:`evaluate_folder` returns; benchmarks use the same pieces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hubseg.errors import InvalidInputError, NotFoundError
from hubseg.gating import choose_gate
from hubseg.geometry import rasterize_labels
from hubseg.metrics import IOU_THRESHOLD, Counts, auroc, label_instances, match_instances


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
    """(image, mask) pairs whose names agree up to the first dot; errors name the folders and suffixes."""
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


def _score_image(image_path: Path, mask_path: Path, model, pixel_size_um: float, options, gated: bool, pooled: dict) -> dict:
    """Detect on one image, match against its mask, add to ``pooled`` and return the image's report entry."""
    from hubseg.pipeline import detect  # torch: imported here so that pairing errors answer at once
    from hubseg.slide import open_slide

    truth = read_mask(mask_path)
    with open_slide(image_path, pixel_size_um=pixel_size_um) as slide:
        width, height = slide.dimensions
        if (height, width) != truth.shape:
            raise InvalidInputError(
                f"mask {mask_path.name} is {truth.shape[1]}×{truth.shape[0]} but image {image_path.name} is {width}×{height}"
            )
        objects = detect(slide, model, options=options).objects
    min_pixels = max(1, int(round(options.min_area_um2 / pixel_size_um**2)))
    true_labels = label_instances(truth, min_pixels=min_pixels)
    pred_labels = rasterize_labels([o.geometry for o in objects], truth.shape)
    matching = match_instances(pred_labels, true_labels)
    matched_ids = set(int(i) for i, m in zip(matching.pred_ids, matching.pred_matched) if m)
    counts = Counts(matching.tp, len(objects) - matching.tp, matching.fn)
    pooled["all"].add(counts)
    for k, obj in enumerate(objects, start=1):
        pooled["tp_energy" if k in matched_ids else "fp_energy"].append(obj.mean_energy)
        if obj.review_score is not None:
            pooled["tp_score" if k in matched_ids else "fp_score"].append(obj.review_score)
    pred_mask = pred_labels > 0
    inter = int(np.logical_and(pred_mask, truth).sum())
    area = int(pred_mask.sum()) + int(truth.sum())
    pooled["intersection"] += inter
    pooled["area"] += area
    entry = {"image": image_path.name, "dice": 1.0 if area == 0 else 2.0 * inter / area, "objects": len(objects),
             "true_objects": int(matching.true_ids.size), **counts.summary(), "gated": None}
    if gated:
        keep = [k for k, obj in enumerate(objects, start=1) if not obj.uncertain]
        gated_tp = sum(1 for k in keep if k in matched_ids)
        gated_counts = Counts(gated_tp, len(keep) - gated_tp, int(matching.true_ids.size) - gated_tp)
        pooled["gated"].add(gated_counts)
        entry["gated"] = gated_counts.summary()
    return entry


def evaluate_folder(images_dir, masks_dir, model, pixel_size_um: float, options, progress=None) -> dict:
    """Evaluate ``model`` on image/mask pairs; returns the JSON-able report (``gate``: the gate detection
    applies, :func:`hubseg.gating.choose_gate`, as ``{kind, cutoff}``)."""
    pairs = find_pairs(Path(images_dir), Path(masks_dir))
    card = model.card
    energy_gate = card.energy_gate if isinstance(card.energy_gate, dict) else None
    has_review = isinstance(getattr(card, "review_model", None), dict)
    chosen = choose_gate(card)
    applied = {"kind": chosen["kind"], "cutoff": chosen["cutoff"]} if chosen else None
    pooled = {"all": Counts(), "gated": Counts(), "intersection": 0, "area": 0,
              "tp_energy": [], "fp_energy": [], "tp_score": [], "fp_score": []}
    images = []
    for index, (image_path, mask_path) in enumerate(pairs):
        images.append(_score_image(image_path, mask_path, model, pixel_size_um, options, applied is not None, pooled))
        if progress:
            progress(index + 1, len(pairs), image_path.name)
    return {
        "dice": 1.0 if pooled["area"] == 0 else 2.0 * pooled["intersection"] / pooled["area"],
        **pooled["all"].summary(),
        "gated": pooled["gated"].summary() if applied is not None else None,
        "gate": applied,
        "energy_gate": energy_gate,
        "energy_auroc": auroc(pooled["tp_energy"], pooled["fp_energy"]),
        "review_score_auroc": auroc(pooled["tp_score"], pooled["fp_score"]) if has_review else None,
        # the one score the review list, the #N labels and the overlay colours follow (hubseg.instances.review_values)
        "review_order": "review score" if pooled["tp_score"] or pooled["fp_score"] else "energy",
        "model": {"name": card.name, "version": int(card.version)},
        "pixel_size_um": float(pixel_size_um),
        "iou_threshold": IOU_THRESHOLD,
        "images": images,
    }


__all__ = ["IMAGE_SUFFIXES", "evaluate_folder", "find_pairs", "read_mask"]
