"""Training augmentations (albumentations): geometry, scale jitter, colour, blur/low resolution/noise/JPEG, and two
transforms for slides from other labs — HED stain variation and partial tissue / section edges.

Tiles are read with a margin (:func:`read_size`) so rotations and the ±30 % scale jitter never show
empty corners; the pipeline ends with a centre crop to the training tile size. Masks use 255 = ignore
(padding outside the image, pixels outside reviewed regions); transforms keep it.
"""

from __future__ import annotations

import math
from typing import Any

import albumentations as A
import cv2
import numpy as np

from hubseg.stain import hed_shift

IGNORE_INDEX = 255
AUGMENTATION_LEVELS = ("none", "light", "default", "strong")
READ_MARGIN = 1.5  # read tiles 1.5× larger so rotated/zoomed-out tiles have real pixels in the corners


def read_size(tile_size: int, level: str = "default") -> int:
    """Side of the window to read before augmenting a ``tile_size`` training tile."""
    if level == "none":
        return int(tile_size)
    return int(math.ceil(tile_size * READ_MARGIN / 2) * 2)


class HEDStainJitter(A.ImageOnlyTransform):
    """Stain variation in HED optical-density space (Tellez et al. 2019) via :func:`hubseg.stain.hed_shift`.

    Each application draws a strength in ``strength_range`` and per-stain factors ``c → α·c + β``: unlike RGB
    jitter this changes haematoxylin and eosin/PAS independently, as other labs' protocols do.
    """

    def __init__(self, strength_range: tuple[float, float] = (0.02, 0.25), p: float = 0.5):
        super().__init__(p=p)
        self.strength_range = (float(strength_range[0]), float(strength_range[1]))

    def get_params(self) -> dict[str, Any]:
        low, high = self.strength_range
        return {
            "strength": float(self.py_random.uniform(low, high)),
            "seed": int(self.py_random.randint(0, 2**31 - 1)),
        }

    def apply(self, img: np.ndarray, strength: float = 0.0, seed: int = 0, **params) -> np.ndarray:
        return hed_shift(img, min(strength, 0.95), rng=seed)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("strength_range",)


class SectionEdge(A.DualTransform):
    """Partial tissue: replace the part of the tile beyond a random wavy line by bright glass.

    Mimics section edges, tears and tiles at the border of the tissue. The mask becomes background there
    (no glomerulus on glass) except where it was ``ignore``.
    """

    def __init__(self, max_fraction: float = 0.5, p: float = 0.2):
        super().__init__(p=p)
        self.max_fraction = float(max_fraction)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        rnd = self.py_random
        angle = rnd.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        along = xs * math.cos(angle) + ys * math.sin(angle)
        across = -xs * math.sin(angle) + ys * math.cos(angle)
        span = float(along.max() - along.min())
        # the line sits so that between 5 % and max_fraction of the tile becomes glass
        offset = along.max() - span * rnd.uniform(0.05, self.max_fraction)
        amplitude = span * rnd.uniform(0.0, 0.06)
        wavelength = span * rnd.uniform(0.3, 1.2)
        edge = offset + amplitude * np.sin(2 * math.pi * across / wavelength + rnd.uniform(0, 2 * math.pi))
        glass = along > edge
        colour = np.array([rnd.uniform(225, 252) for _ in range(3)], dtype=np.float32)
        return {"glass": glass, "colour": colour, "noise_seed": rnd.randint(0, 2**31 - 1)}

    def apply(self, img: np.ndarray, glass: np.ndarray | None = None, colour=None, noise_seed: int = 0, **params):
        if glass is None:
            return img
        out = img.copy()
        noise = np.random.default_rng(noise_seed).normal(0, 3, size=(int(glass.sum()), 3))
        out[glass] = np.clip(colour + noise, 0, 255).astype(np.uint8)
        return out

    def apply_to_mask(self, mask: np.ndarray, glass: np.ndarray | None = None, **params):
        if glass is None:
            return mask
        out = mask.copy()
        out[glass & (mask != IGNORE_INDEX)] = 0
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("max_fraction",)


def build_augmentation(tile_size: int, level: str = "default", seed: int | None = None) -> A.Compose:
    """The training pipeline: input ``read_size(tile_size)`` windows, output ``tile_size`` tiles."""
    if level not in AUGMENTATION_LEVELS:
        raise ValueError(f"augmentation level must be one of {', '.join(AUGMENTATION_LEVELS)}, got {level!r}")
    crop = A.CenterCrop(tile_size, tile_size)
    if level == "none":
        return A.Compose([crop], seed=seed)
    strong = level == "strong"
    light = level == "light"
    scale = (0.85, 1.15) if light else (0.7, 1.3)  # ±30 % around the operating pixel size
    transforms = [
        SectionEdge(p=0.0 if light else 0.15),
        A.Affine(
            scale=scale,
            rotate=(-180, 180),
            shear=(-5, 5) if not light else (0, 0),
            interpolation=cv2.INTER_LINEAR,
            mask_interpolation=cv2.INTER_NEAREST,
            border_mode=cv2.BORDER_CONSTANT,
            fill=245,
            fill_mask=IGNORE_INDEX,
            p=0.9,
        ),
        crop,
        A.RandomRotate90(p=0.5),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        HEDStainJitter(strength_range=(0.02, 0.35 if strong else 0.25), p=0.3 if light else 0.6),
        A.HueSaturationValue(hue_shift_limit=8, sat_shift_limit=20, val_shift_limit=12, p=0.4),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.4),
        A.CLAHE(clip_limit=2.0, p=0.1),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MedianBlur(blur_limit=3)], p=0.05 if light else 0.2),
        # Slides scanned coarser than the model's pixel size (e.g. 10x scans read at 1.5 µm/px) arrive
        # upsampled, with detail lost: simulate down to half the resolution.
        A.Downscale(scale_range=(0.45, 0.9), interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                    p=0.1 if light else 0.25),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.2),
        A.ImageCompression(quality_range=(30, 95), p=0.1 if light else 0.3),
    ]
    return A.Compose(transforms, seed=seed)
