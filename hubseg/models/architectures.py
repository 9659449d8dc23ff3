"""Build the torch module a model card describes: a name → builder registry per ``architecture.kind``.

``kind = "smp"``: a segmentation_models_pytorch network (``arch`` one of :data:`SMP_ARCHS`, any smp
``encoder``, ``decoder_attention_type`` e.g. ``"scse"``, optional ``encoder_depth`` / ``decoder_channels``).
``kind = "tuberlin"``: the TU-Berlin HuBMAP U-Net (ResNet34, SCSE decoders, hypercolumn head).
``kind = "test-threshold"``: a deterministic module for tests (dark pixels are foreground).
Modules are always built with random init: weights come from our safetensors files.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from hubseg.errors import InvalidInputError

SMP_ARCHS = ("Unet", "UnetPlusPlus", "FPN", "DeepLabV3Plus")


def _build_smp(arch: dict[str, Any]) -> nn.Module:
    import segmentation_models_pytorch as smp

    name = arch.get("arch", "Unet")
    if name not in SMP_ARCHS:
        raise InvalidInputError(f"unknown smp architecture {name!r}; valid: {', '.join(SMP_ARCHS)}")
    encoder = arch.get("encoder", "timm-tf_efficientnet_lite0")
    valid_encoders = smp.encoders.get_encoder_names()
    if encoder not in valid_encoders:
        raise InvalidInputError(
            f"unknown smp encoder {encoder!r}; valid examples: resnet18, resnet34, efficientnet-b2, "
            f"timm-tf_efficientnet_lite0 (all {len(valid_encoders)}: see segmentation_models_pytorch docs)"
        )
    kwargs: dict[str, Any] = {
        "encoder_name": encoder,
        "encoder_weights": None,
        "classes": int(arch.get("classes", 2)),
        "in_channels": int(arch.get("in_channels", 3)),
    }
    if "encoder_depth" in arch:
        kwargs["encoder_depth"] = int(arch["encoder_depth"])
    if name in ("Unet", "UnetPlusPlus"):
        if arch.get("decoder_attention_type"):
            kwargs["decoder_attention_type"] = arch["decoder_attention_type"]
        if "decoder_channels" in arch:
            kwargs["decoder_channels"] = [int(c) for c in arch["decoder_channels"]]
    return getattr(smp, name)(**kwargs)


def _build_tuberlin(arch: dict[str, Any]) -> nn.Module:
    from hubseg.models.tuberlin import TUBerlinUNet

    return TUBerlinUNet(
        n_classes=int(arch.get("classes", 2)),
        num_head_features=int(arch.get("num_head_features", 32)),
    )


class ThresholdTestModule(nn.Module):
    """Deterministic test model: for 0..1 inputs, foreground logit ``z = scale·(level − mean(RGB))``.

    Logits are ``[−z/2, z/2]``, so pixels darker than ``level`` (default mid-grey) are foreground and darker =
    higher energy. ``level`` is a buffer, not a weight: cards store it in ``architecture.level``.
    """

    def __init__(self, scale: float = 12.0, level: float = 0.5):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=False)
        self.level = float(level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.scale * (self.level - x.mean(dim=1, keepdim=True))
        return torch.cat([-z / 2, z / 2], dim=1)


def _build_test_threshold(arch: dict[str, Any]) -> nn.Module:
    return ThresholdTestModule(float(arch.get("scale", 12.0)), float(arch.get("level", 0.5)))


ARCHITECTURE_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "smp": _build_smp,
    "tuberlin": _build_tuberlin,
    "test-threshold": _build_test_threshold,
}


def build_module(architecture: dict[str, Any]) -> nn.Module:
    """A randomly initialised module for a card's ``architecture`` dict."""
    kind = architecture.get("kind")
    builder = ARCHITECTURE_BUILDERS.get(kind)
    if builder is None:
        raise InvalidInputError(
            f"unknown architecture kind {kind!r}; valid: {', '.join(sorted(ARCHITECTURE_BUILDERS))}"
        )
    return builder(architecture)


def smp_unet_architecture(
    encoder: str = "timm-tf_efficientnet_lite0",
    classes: int = 2,
    encoder_depth: int | None = None,
    decoder_channels: list[int] | None = None,
) -> dict[str, Any]:
    """The architecture dict for an smp U-Net with SCSE decoder attention."""
    arch: dict[str, Any] = {
        "kind": "smp",
        "arch": "Unet",
        "encoder": encoder,
        "decoder_attention_type": "scse",
        "classes": classes,
    }
    if encoder_depth is not None:
        arch["encoder_depth"] = encoder_depth
    if decoder_channels is not None:
        arch["decoder_channels"] = list(decoder_channels)
    return arch
