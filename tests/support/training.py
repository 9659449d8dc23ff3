"""Helpers for training tests: synthetic glomerulus-like data and a tiny, fast training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from hubseg.training.trainer import TrainConfig


def synthetic_tile(rng: np.random.Generator, size: int = 128, disks: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pink background with purple disks; returns (rgb uint8, foreground bool)."""
    rgb = np.empty((size, size, 3), np.uint8)
    rgb[:] = (225, 170, 200)
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), bool)
    for _ in range(disks):
        cx, cy = rng.uniform(24, size - 24, 2)
        radius = rng.uniform(12, 18)
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    rgb[mask] = (120, 60, 140)
    return rgb, mask


def write_image_folder(root: Path, count: int = 4, size: int = 128, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        rgb, mask = synthetic_tile(rng, size)
        Image.fromarray(rgb).save(root / "images" / f"{index:03d}.png")
        red = np.zeros((size, size, 3), np.uint8)
        red[mask] = (255, 0, 0)
        Image.fromarray(red).save(root / "masks" / f"{index:03d}.png")
    return root


def tiny_config(**overrides) -> TrainConfig:
    """A config that trains in seconds on the CPU (small encoder, random init, 64 px tiles)."""
    values = dict(
        family="synthetic",
        encoder="mobilenet_v2",
        decoder_channels=[32, 16, 16, 16, 16],
        imagenet=False,
        pixel_size_um=2.0,
        tile_size=64,
        train_tile_size=64,
        epochs=2,
        batch_size=4,
        val_every=1,
        val_fraction=0.25,
        device="cpu",
        seed=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def make_teacher(data_dir: Path, epochs: int = 8) -> str:
    """Train a tiny real teacher (``synthetic-v1``) on synthetic disks (≈ 20 s on one core) with a calibrated gate.

    Such short runs on CPU sometimes collapse to "all background" (no object on the validation tiles, no gate);
    then the folder is removed and the next seed tried, so tests always get a teacher that detects. Trained on one
    torch thread (restored afterwards): more threads make the tiny CPU run less reproducible.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_teacher(Path(data_dir), epochs)
    finally:
        torch.set_num_threads(previous)


def _train_teacher(data_dir: Path, epochs: int) -> str:
    import shutil

    from hubseg.models.registry import ModelRegistry
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import train

    folder = write_image_folder(Path(data_dir).parent / "teacher-data", count=6, size=128, seed=1)
    registry = ModelRegistry(data_dir)
    for seed in range(4):
        card = train(tiny_config(name="synthetic-v1", epochs=epochs, val_fraction=0.34, val_every=100, lr=5e-3,
                                 augmentation="light", seed=seed), [ImageFolderSource(folder, 4.0)], registry)
        if card.energy_gate is not None and _detects_confidently(registry, card.name):
            return card.name
        shutil.rmtree(registry.path(card.name))
    raise AssertionError("the synthetic teacher did not learn to detect the disks with any of 4 seeds")


def _detects_confidently(registry, name: str, minimum: int = 2) -> bool:
    """Whether the teacher, with the product's detection defaults, calls at least ``minimum`` disks of a fresh
    generated image (the one :func:`write_unlabelled_slide` writes) confident: a teacher whose thin gate sits above
    every object would leave self-training nothing to learn from."""
    from hubseg.pipeline import detect
    from hubseg.slide import ArraySlide

    rgb, _ = synthetic_tile(np.random.default_rng(7), 192, disks=4)
    objects = detect(ArraySlide(rgb, 4.0), registry.load(name, device="cpu")).objects
    return sum(not o.uncertain for o in objects) >= minimum


def write_unlabelled_slide(path: Path, tiff_writer, size: int = 192, disks: int = 4, seed: int = 7) -> Path:
    """A generated pyramidal OME-TIFF (4 µm/px) with glomerulus-like disks on tissue and no labels."""
    rgb, _ = synthetic_tile(np.random.default_rng(seed), size, disks=disks)
    return tiff_writer(path, rgb, pixel_size_um=4.0)


def corrupt_pseudo_labels(monkeypatch) -> None:
    """Make every student train on swapped pseudo-label targets (glomerulus ↔ background, ignore kept); the
    held-back tiles the safety check scores against keep the teacher's true pseudo-labels."""
    from hubseg.training.pseudolabels import PseudoLabelSource

    honest_load = PseudoLabelSource.load

    def corrupted_load(self, model_pixel_size_um):
        images = honest_load(self, model_pixel_size_um)
        for image in images:
            label = image.label.copy()
            label[image.label == 0], label[image.label == 1] = 1, 0
            image.label = label
        return images

    monkeypatch.setattr(PseudoLabelSource, "load", corrupted_load)
