"""What the benchmarks share: the AIDPATH tiles, detection on an in-memory tile, the library's instance matcher,
and the distribution shifts (stain, scale, JPEG, blur) the robustness and adaptation benchmarks apply."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "pas-glomeruli-aidpath"
DATASET_PIXEL_SIZE_UM = 0.4942


# --- tiles and detection --------------------------------------------------------------------------------
def read_pairs(dataset: Path, limit: int | None = None, names: list[str] | None = None):
    """``[(name, rgb, truth mask)]`` of ``dataset/images`` and ``dataset/masks`` (the ``hubseg evaluate`` pairing)."""
    from hubseg.evaluation import find_pairs, read_mask

    pairs = find_pairs(dataset / "images", dataset / "masks")
    if names:
        wanted = {Path(n).stem for n in names}
        pairs = [p for p in pairs if p[0].stem in wanted]
    if limit:
        pairs = pairs[:limit]
    return [(image.name, np.asarray(Image.open(image).convert("RGB")), read_mask(mask)) for image, mask in pairs]


def detect_array(rgb: np.ndarray, pixel_size_um: float, model, options=None):
    """``hubseg.pipeline.detect`` on an RGB tile held in memory (the engine's own path, as for a slide)."""
    from hubseg.pipeline import detect
    from hubseg.slide import ArraySlide

    return detect(ArraySlide(rgb, pixel_size_um), model, options=options)


def match_objects(objects, true_labels: np.ndarray, to_original: float = 1.0):
    """The library's instance matching (IoU > 0.5, one-to-one, as ``hubseg evaluate``) of detected objects against
    labelled truth; geometries found in a rescaled frame are scaled back by ``to_original`` first.
    Returns ``(matching, matched, pred_labels)``: object k of ``objects`` is label k + 1, ``matched`` the labels
    of true objects."""
    from shapely import affinity

    from hubseg.geometry import rasterize_labels
    from hubseg.metrics import match_instances

    geometries = [o.geometry if to_original == 1.0 else
                  affinity.scale(o.geometry, xfact=to_original, yfact=to_original, origin=(0, 0)) for o in objects]
    pred_labels = rasterize_labels(geometries, true_labels.shape)
    matching = match_instances(pred_labels, true_labels)
    return matching, {int(i) for i, m in zip(matching.pred_ids, matching.pred_matched) if m}, pred_labels


# --- shifts ---------------------------------------------------------------------------------------------
@dataclass
class Shifted:
    rgb: np.ndarray
    pixel_size_um: float
    to_original: float  # multiply shifted-frame coordinates by this to get original-frame coordinates


def _tile_seed(seed: int, tile_name: str, condition: str) -> int:
    return zlib.crc32(f"{seed}:{tile_name}:{condition}".encode())


def make_shift(condition: str, seed: int) -> tuple[str, Callable[[np.ndarray, float, str], Shifted]]:
    """(description, function(rgb, pixel_size_um, tile_name) -> Shifted) for a condition name."""
    from hubseg.stain import hed_shift

    kind, _, value = condition.partition("-")
    try:
        number = float(value) if value else None
    except ValueError:
        number = None
    if condition == "none":
        return "unshifted", lambda rgb, px, name: Shifted(rgb, px, 1.0)
    if kind == "hed" and number is not None:
        def shift_hed(rgb, px, name):
            return Shifted(hed_shift(rgb, number, rng=_tile_seed(seed, name, condition)), px, 1.0)
        return f"HED stain shift, strength {number:g}", shift_hed
    if kind == "scale" and number is not None and number > 0:
        def shift_scale(rgb, px, name):
            h, w = rgb.shape[:2]
            new_w = max(8, int(round(w * px / number)))
            new_h = max(8, int(round(h * px / number)))
            resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC))
            effective = px * w / new_w  # the exact pixel size of the resampled image
            return Shifted(np.ascontiguousarray(resized), effective, effective / px)
        return f"input at {number:g} µm/px (resampled, pixel size passed)", shift_scale
    if kind == "jpeg" and number is not None and 1 <= number <= 100:
        def shift_jpeg(rgb, px, name):
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(number))
            return Shifted(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")), px, 1.0)
        return f"JPEG quality {int(number)}", shift_jpeg
    if kind == "blur" and number is not None and number > 0:
        def shift_blur(rgb, px, name):
            blurred = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius=number))
            return Shifted(np.asarray(blurred), px, 1.0)
        return f"Gaussian blur σ = {number:g} px ({number * DATASET_PIXEL_SIZE_UM:.1f} µm)", shift_blur
    raise SystemExit(
        f"unknown condition {condition!r}; valid: none, hed-STRENGTH (0..1), scale-UM_PER_PX, jpeg-QUALITY (1..100), "
        "blur-SIGMA_PX"
    )
