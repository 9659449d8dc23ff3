"""Training data as the trainer sees it: the held-out split, the epoch's tiles (:class:`TileSampler`) and the
sources loaded at the model's pixel size. Configured by a :class:`hubseg.training.trainer.TrainConfig` (or any
object with the same fields; not imported here, so the trainer can import this module)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubseg.errors import InvalidInputError
from hubseg.training.augment import IGNORE_INDEX, build_augmentation, read_size
from hubseg.training.calibration import split_regions
from hubseg.training.sources import TrainingImage, open_source


def split_images(images: list[TrainingImage], config) -> tuple[list[TrainingImage], list[TrainingImage]]:
    """Training and held-out images: ``config.val_images`` by name, else ``val_fraction`` of the reviewed
    regions (:func:`hubseg.training.calibration.split_regions`; a label set's regions are split individually)."""
    if config.val_images is not None:
        wanted = set(config.val_images)
        unknown = wanted - {i.name for i in images}
        if unknown:
            raise InvalidInputError(
                f"validation image(s) {sorted(unknown)} not among the training images {[i.name for i in images]}"
            )
        return [i for i in images if i.name not in wanted], [i for i in images if i.name in wanted]
    return split_regions(images, config.val_fraction, config.seed)


class TileSampler:
    """Builds each epoch's tile list and reads augmented tiles."""

    def __init__(self, images: list[TrainingImage], config, stain_normalization: str | None = None):
        self.images = images
        self.config = config
        self.tile = config.train_tile_size
        self.window = read_size(self.tile, config.augmentation)
        self.augment = build_augmentation(self.tile, config.augmentation, seed=config.seed)
        self.stain_normalizer = None
        if stain_normalization is not None:
            from hubseg.stain import StainNormalizer  # torchstain is only needed when normalising

            self.stain_normalizer = StainNormalizer(stain_normalization)
        # candidate centres for random tiles: labelled pixels on a coarse grid, per image
        self.random_candidates = []
        for image in images:
            stride = max(4, self.tile // 16)
            ys, xs = np.nonzero(image.label[::stride, ::stride] != IGNORE_INDEX)
            self.random_candidates.append(np.stack([xs * stride, ys * stride], axis=1).astype(np.float32))
        weights = np.array([len(c) for c in self.random_candidates], dtype=np.float64)
        self.image_weights = weights / weights.sum() if weights.sum() > 0 else None

    def epoch(self, epoch: int) -> list[tuple[int, float, float]]:
        rng = np.random.default_rng((self.config.seed, epoch))
        jitter = self.config.jitter * self.tile
        samples = []
        for index, image in enumerate(self.images):
            for cx, cy in list(image.positives) + list(image.negatives):
                samples.append((index, cx + rng.uniform(-jitter, jitter), cy + rng.uniform(-jitter, jitter)))
        n_objects = len(samples)
        n_random = int(math.ceil(self.config.random_tiles * n_objects)) if n_objects else 4 * len(self.images)
        if self.image_weights is not None:
            for index in rng.choice(len(self.images), size=n_random, p=self.image_weights):
                candidates = self.random_candidates[index]
                cx, cy = candidates[rng.integers(len(candidates))]
                samples.append((int(index), float(cx), float(cy)))
        order = rng.permutation(len(samples))
        return [samples[i] for i in order]

    def read(self, sample: tuple[int, float, float]) -> tuple[np.ndarray, np.ndarray]:
        index, cx, cy = sample
        x0 = int(round(cx - self.window / 2))
        y0 = int(round(cy - self.window / 2))
        rgb, label = self.images[index].read(x0, y0, self.window, self.window)
        if self.stain_normalizer is not None:  # the same per-tile normalisation detection applies
            rgb = self.stain_normalizer(rgb)
        out = self.augment(image=rgb, mask=label)
        return out["image"], out["mask"]


def load_sources(sources, model_pixel_size_um: float) -> tuple[list[TrainingImage], list[dict[str, Any]]]:
    """Sources (objects with ``load``/``describe``, or path strings) → training images + provenance."""
    images: list[TrainingImage] = []
    described = []
    for source in sources:
        if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
            source = open_source(str(source))
        images.extend(source.load(model_pixel_size_um))
        described.append(source.describe())
    names = [i.name for i in images]
    if len(set(names)) != len(names):  # keep names unique for validation splits
        seen: dict[str, int] = {}
        for image in images:
            seen[image.name] = seen.get(image.name, 0) + 1
            if seen[image.name] > 1:
                image.name = f"{image.name}#{seen[image.name]}"
    if not images:
        raise InvalidInputError("no training images in the given sources")
    return images, described


__all__ = ["TileSampler", "load_sources", "split_images"]
