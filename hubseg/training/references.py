"""Reference glomeruli of a model card: small crops of the training data's most certain true glomeruli.

They are stored beside the card (``references/<n>.jpg``, a few KB each) and listed in the card's
``references`` field, so a reviewer can compare a doubtful object with what the model is sure of even when the
current image has too few confident objects of its own (the server serves them:
``GET /v1/models/{name}/references/{index}``).

Selection: every training image runs through detection (:func:`hubseg.pipeline.detect`, no gate); detected
objects that match a true glomerulus (IoU > 0.5) are ranked by review score when the card has a review model,
else by mean energy; the top ones, at most :data:`PER_IMAGE` per image, become crops centred on the object.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from hubseg import metrics
from hubseg.models.card import REFERENCES_FOLDER, ModelCard
from hubseg.paths import atomic_write_bytes

DEFAULT_COUNT = 6
PER_IMAGE = 2  # crops from one image at most: references should show the variety of the training data
CROP_PX = 128  # longest side of a stored crop
CONTEXT = 1.4  # crop side = CONTEXT × the object's longer bounding-box side (some tissue around it)
JPEG_QUALITY = 85


def _candidates(model, image) -> list[dict[str, Any]]:
    """Matched (true) detections of one training image with their certainty and model-px bounding box."""
    from hubseg.geometry import rasterize_labels
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.slide import ArraySlide
    from hubseg.training.augment import IGNORE_INDEX

    height, width = image.shape
    rgb, label = image.read(0, 0, width, height)
    result = detect(ArraySlide(rgb, image.pixel_size_um), model,
                    options=DetectionOptions(use_energy_gate=False, tissue_detection=False))
    if not result.objects:
        return []
    pred = rasterize_labels([o.geometry for o in result.objects], (height, width))
    truth = metrics.label_instances((label == 1) & (label != IGNORE_INDEX))
    matching = metrics.match_instances(pred, truth)
    matched = dict(zip(matching.pred_ids.tolist(), matching.pred_matched.tolist()))
    found = []
    for index, obj in enumerate(result.objects, start=1):
        if not matched.get(index):
            continue
        certainty = obj.review_score if obj.review_score is not None else obj.mean_energy
        found.append({"certainty": float(certainty), "energy": float(obj.mean_energy), "bounds": obj.geometry.bounds,
                      "area_um2": float(obj.area_um2), "review_score": obj.review_score, "image": image})
    return found


def _crop_jpeg(image, bounds) -> tuple[bytes, int, int, int]:
    """JPEG bytes, width, height of a square crop around ``bounds`` (model px), and its side in model px."""
    from PIL import Image

    minx, miny, maxx, maxy = bounds
    side = int(np.ceil(max(maxx - minx, maxy - miny) * CONTEXT))
    x0 = int(round((minx + maxx) / 2 - side / 2))
    y0 = int(round((miny + maxy) / 2 - side / 2))
    rgb, _ = image.read(x0, y0, side, side)
    picture = Image.fromarray(rgb)
    if side > CROP_PX:
        picture = picture.resize((CROP_PX, CROP_PX), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), picture.width, picture.height, side


def select_references(model, images, count: int = DEFAULT_COUNT) -> list[tuple[bytes, dict[str, Any]]]:
    """The ``count`` most certain true glomeruli of ``images`` (TrainingImage) as (JPEG bytes, card entry)."""
    candidates = []
    for image in images:
        best = sorted(_candidates(model, image), key=lambda c: c["certainty"], reverse=True)[:PER_IMAGE]
        candidates.extend(best)
    candidates.sort(key=lambda c: c["certainty"], reverse=True)
    chosen = []
    for rank, candidate in enumerate(candidates[:count], start=1):
        data, width, height, side = _crop_jpeg(candidate["image"], candidate["bounds"])
        entry = {
            "file": f"{REFERENCES_FOLDER}/{rank}.jpg", "sha256": hashlib.sha256(data).hexdigest(),
            "width": width, "height": height, "rank": rank, "image": candidate["image"].name,
            "area_um2": round(candidate["area_um2"], 1), "energy": round(candidate["energy"], 4),
            "review_score": None if candidate["review_score"] is None else round(candidate["review_score"], 4),
            "pixel_size_um": round(candidate["image"].pixel_size_um * side / width, 4),
        }
        chosen.append((data, entry))
    return chosen


def write_references(folder: str | Path, references: list[tuple[bytes, dict[str, Any]]], source: str = "") -> ModelCard:
    """Store crops beside the card in ``folder`` and list them in its ``references`` field (replacing any)."""
    folder = Path(folder)
    card = ModelCard.load(folder)
    target = folder / REFERENCES_FOLDER
    target.mkdir(exist_ok=True)
    for old in target.glob("*.jpg"):
        old.unlink()
    for data, entry in references:
        atomic_write_bytes(folder / entry["file"], data)
    card.references = [{**entry, "source": source} if source else entry for _, entry in references]
    card.save(folder)
    return card


__all__ = ["select_references", "write_references", "DEFAULT_COUNT"]
