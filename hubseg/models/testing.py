"""Helpers for tests across the project (engine, server, QuPath extension): tiny real models on the CPU.

``make_tiny_model`` registers a small seeded random-init smp U-Net (SCSE) that runs in milliseconds;
``make_threshold_model`` registers a deterministic model (dark pixels = foreground, darker = higher
energy) so tests can assert exact detections on synthetic images (dark disks on a light background).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from hubseg.models.architectures import ThresholdTestModule, build_module
from hubseg.models.card import ModelCard
from hubseg.models.registry import ModelRegistry

TINY_ARCHITECTURE: dict[str, Any] = {
    "kind": "smp",
    "arch": "Unet",
    "encoder": "mobilenet_v2",
    "encoder_depth": 3,
    "decoder_channels": [32, 16, 16],
    "decoder_attention_type": "scse",
    "classes": 2,
}


def _registry(registry_or_data_dir: ModelRegistry | str | os.PathLike) -> ModelRegistry:
    if isinstance(registry_or_data_dir, ModelRegistry):
        return registry_or_data_dir
    return ModelRegistry(registry_or_data_dir)


def tiny_module(seed: int = 0) -> torch.nn.Module:
    """The tiny U-Net with seeded random weights (same seed → same weights)."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return build_module(dict(TINY_ARCHITECTURE))
    finally:
        torch.random.set_rng_state(state)


def make_tiny_model(
    registry_or_data_dir: ModelRegistry | str | os.PathLike,
    name: str = "tiny-test-v1",
    pixel_size_um: float = 1.0,
    tile_size: int = 64,
    *,
    seed: int = 0,
    threshold: float = 0.5,
    energy_gate: dict[str, Any] | None = None,
    activate: bool = False,
) -> ModelCard:
    """Register a tiny random-init U-Net (≈2 M params, fp16 on disk) and return its card."""
    if not 16 <= int(tile_size) <= 1024:
        raise ValueError("tile_size for the tiny model must be between 16 and 1024")
    card = ModelCard(
        name=name,
        architecture=dict(TINY_ARCHITECTURE),
        pixel_size_um=pixel_size_um,
        tile_size=tile_size,
        threshold=threshold,
        energy_gate=energy_gate,
        provenance={"kind": "test", "note": "random init, seed %d; not a real model" % seed},
    )
    return _register(registry_or_data_dir, tiny_module(seed), card, activate, dtype=torch.float16)


def _register(registry_or_data_dir, module: torch.nn.Module, card: ModelCard, activate: bool, **options) -> ModelCard:
    registry = _registry(registry_or_data_dir)
    card = registry.register(module.state_dict(), card, **options)
    if activate:
        registry.activate(card.name)
    return card


def threshold_card(name: str = "threshold-test-v1", pixel_size_um: float = 1.0, tile_size: int = 64, *,
                   scale: float = 12.0, threshold: float = 0.5, energy_gate: dict[str, Any] | None = None,
                   provenance: dict[str, Any] | None = None, level: float = 0.5) -> ModelCard:
    """The card of the deterministic threshold test model (see :func:`make_threshold_model`)."""
    return ModelCard(
        name=name,
        architecture={"kind": "test-threshold", "classes": 2, "scale": float(scale),
                      **({"level": float(level)} if level != 0.5 else {})},
        normalization={"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        pixel_size_um=pixel_size_um,
        tile_size=tile_size,
        threshold=threshold,
        energy_gate=energy_gate,
        provenance=dict(provenance or {}),
    )


def threshold_loaded_model(pixel_size_um: float = 1.0, tile_size: int = 64, energy_gate=None, threshold: float = 0.5,
                           scale: float = 12.0):
    """The threshold test model (pointwise: dark = foreground) as a LoadedModel on the CPU, unregistered."""
    from hubseg.models.loaded import LoadedModel

    card = threshold_card(pixel_size_um=pixel_size_um, tile_size=tile_size, scale=scale, threshold=threshold,
                          energy_gate=energy_gate)
    return LoadedModel(card, ThresholdTestModule(scale), device="cpu")


def make_threshold_model(
    registry_or_data_dir: ModelRegistry | str | os.PathLike,
    name: str = "threshold-test-v1",
    pixel_size_um: float = 1.0,
    tile_size: int = 64,
    *,
    scale: float = 12.0,
    threshold: float = 0.5,
    energy_gate: dict[str, Any] | None = None,
    activate: bool = False,
    level: float = 0.5,
) -> ModelCard:
    """Register the deterministic test model: foreground logit ``scale·(level − mean RGB/255)``.

    Pixels darker than mid-grey are foreground; a pixel's negative energy is
    ``logsumexp([−z/2, z/2])`` which grows with darkness, so darker objects rank as more confident.
    """
    card = threshold_card(name, pixel_size_um, tile_size, scale=scale, threshold=threshold, energy_gate=energy_gate,
                          level=level, provenance={"kind": "test", "note": "deterministic threshold model for tests"})
    return _register(registry_or_data_dir, ThresholdTestModule(scale, level), card, activate)


def make_ensemble(
    registry_or_data_dir: ModelRegistry | str | os.PathLike,
    members: list[ModelCard],
    name: str = "ensemble-test-v1",
    *,
    activate: bool = False,
    **fields: Any,
) -> ModelCard:
    """Register an ensemble card over already registered ``members`` (e.g. tiny models of several seeds)."""
    from hubseg.models.ensemble import ensemble_card

    registry = _registry(registry_or_data_dir)
    card = registry.register_ensemble(ensemble_card(name, members, **fields))
    if activate:
        registry.activate(card.name)
    return card
