"""Import foreign checkpoints (the seeds' models) into our format once: card + safetensors.

- ``deepflash2``: ``{'model': state_dict, 'stats': (mean, std)}`` for ``smp.Unet('efficientnet-b2', classes=2)``;
  inputs ÷255 then ``(x − mean)/std``; trained on 512 tiles at 3× downscale of ≈0.5 µm/px (1.5 µm/px).
- ``tuberlin``: the TU-Berlin HuBMAP model, ``{'args': ("unet_scse", "Resnet34"), 'kwargs': {...},
  'state_dict': ...}`` or the "_full" layout without ``args`` (the seed's ``UNet(**kwargs)``: ``decoder='scse'``,
  ``backbone='Resnet34'``, ``num_head_features``, ``cat_features``, ...); 1024 tiles at ≈0.5 µm/px, ImageNet mean/std.

Files are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling); numpy arrays in
deepflash2's ``stats`` are allowed through torch's safe-globals list only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hubseg.errors import InvalidInputError, NotFoundError
from hubseg.models.card import IMAGENET_MEAN, IMAGENET_STD, ModelCard

IMPORT_FORMATS = ("deepflash2", "tuberlin")


def _numpy_safe_globals() -> list:
    allowed = [np.ndarray, np.dtype]
    core = getattr(np, "_core", None) or getattr(np, "core")
    allowed.append(core.multiarray._reconstruct)
    if hasattr(core.multiarray, "scalar"):
        allowed.append(core.multiarray.scalar)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed.extend(getattr(dtypes, n) for n in ("Float32DType", "Float64DType") if hasattr(dtypes, n))
    return allowed


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True`` (plus numpy arrays), CPU tensors."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise NotFoundError(f"checkpoint file not found: {source}")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types
        raise InvalidInputError(
            f"cannot read {source.name} as a weights-only PyTorch checkpoint ({str(error).splitlines()[0][:300]}); "
            "hubseg never unpickles arbitrary objects"
        ) from None


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _as_floats(values: Any, name: str) -> list[float]:
    array = np.asarray(values.cpu().numpy() if torch.is_tensor(values) else values, dtype=np.float64).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 3)
    if array.size != 3:
        raise InvalidInputError(f"deepflash2 'stats' {name} must have 3 values (RGB), got {array.size}")
    if array.max() > 1.5:  # stats given on the 0..255 scale
        array = array / 255.0
    return [float(v) for v in array]


def convert_deepflash2(checkpoint: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, list[float]]]:
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise InvalidInputError(
            "not a deepflash2 checkpoint: expected a dict with 'model' (state dict) and 'stats' ((mean, std))"
        )
    state = _strip_prefix(dict(checkpoint["model"]))
    stats = checkpoint.get("stats")
    if stats is None or len(stats) != 2:
        raise InvalidInputError("deepflash2 checkpoint has no 'stats' = (mean, std) for input normalisation")
    normalization = {"mean": _as_floats(stats[0], "mean"), "std": _as_floats(stats[1], "std")}
    architecture = {"kind": "smp", "arch": "Unet", "encoder": "efficientnet-b2", "decoder_attention_type": None, "classes": 2}
    if any(".attention" in k for k in state):
        architecture["decoder_attention_type"] = "scse"
    return state, architecture, normalization


#: Constructor kwargs of the seed's ``UNet(**kwargs)`` that change the weights or the forward pass, and the
#: values our re-implementation (hubseg/models/tuberlin.py) matches. Others (pretrained, resize, tta,
#: frozen_layers, dropout, ...) only matter for training or pre-processing.
_TUBERLIN_SUPPORTED = {"num_filters": 16, "align_corners": False, "objectness": False, "deep_supervision": False}
#: The seed's decoders (``decoder=`` simple|noBN|deconv|scse); only the SCSE one, which its released model uses.
TUBERLIN_DECODERS = ("scse",)
TUBERLIN_OTHER_DECODERS = ("simple", "noBN", "deconv")


def _tuberlin_decoder(value: Any) -> str:
    """``scse`` (the "_full" kwarg) and ``unet_scse`` (the ``args`` model name) are the same architecture."""
    name = str(value)
    if name.lower() in ("scse", "unet_scse"):
        return "scse"
    hint = (f"decoder {name!r} (the seed's {', '.join(TUBERLIN_OTHER_DECODERS)} decoders) is not supported"
            if name in TUBERLIN_OTHER_DECODERS else f"unknown decoder {name!r}")
    raise InvalidInputError(f"TU-Berlin checkpoint: {hint}; only decoder 'scse' (unet_scse) with backbone Resnet34 imports")


def convert_tuberlin(checkpoint: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, list[float]]]:
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InvalidInputError("not a TU-Berlin checkpoint: expected a dict with 'state_dict' (and 'kwargs')")
    kwargs = dict(checkpoint.get("kwargs") or {})
    args = checkpoint.get("args")
    layout = "args" if args is not None else "full"
    if args is not None:
        names = [str(a) for a in args]
        if len(names) >= 2 and (names[0].lower() != "unet_scse" or names[1].lower() != "resnet34"):
            raise InvalidInputError(f"TU-Berlin checkpoint is {tuple(args)}; only ('unet_scse', 'Resnet34') is supported")
    else:
        _tuberlin_decoder(kwargs.get("decoder", "scse"))
        backbone = str(kwargs.get("backbone", "Resnet34"))
        if backbone.lower() != "resnet34":
            raise InvalidInputError(f"TU-Berlin checkpoint has backbone {backbone!r}; only Resnet34 (with decoder 'scse') imports")
        if kwargs.get("cat_features", True) is not True:
            raise InvalidInputError("TU-Berlin checkpoint without hypercolumn (cat_features=False) is not supported")
    for key, expected in _TUBERLIN_SUPPORTED.items():
        if key in kwargs and kwargs[key] is not None and kwargs[key] != expected:
            raise InvalidInputError(f"TU-Berlin checkpoint has {key}={kwargs[key]!r}; only {key}={expected!r} is supported")
    classes = int(kwargs.get("n_classes", kwargs.get("num_classes", 2)))
    architecture = {
        "kind": "tuberlin",
        "backbone": "resnet34",
        "decoder": "scse",
        "classes": classes,
        "num_head_features": int(kwargs.get("num_head_features") or 32),
        "checkpoint_layout": layout,
    }
    state = _strip_prefix(dict(checkpoint["state_dict"]))
    return state, architecture, {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def import_checkpoint(
    path: str | os.PathLike,
    fmt: str,
    registry,
    name: str,
    pixel_size_um: float | None = None,
    tile_size: int | None = None,
    threshold: float = 0.5,
    description: str = "",
) -> ModelCard:
    """Convert a foreign checkpoint and register it under ``name``; returns the new card."""
    if fmt not in IMPORT_FORMATS:
        raise InvalidInputError(f"unknown checkpoint format {fmt!r}; valid: {', '.join(IMPORT_FORMATS)}")
    checkpoint = read_checkpoint(path)
    if fmt == "deepflash2":
        state, architecture, normalization = convert_deepflash2(checkpoint)
        defaults = (1.5, 512)
    else:
        state, architecture, normalization = convert_tuberlin(checkpoint)
        defaults = (0.5, 1024)
    source = Path(path)
    card = ModelCard(
        name=name,
        architecture=architecture,
        normalization=normalization,
        pixel_size_um=pixel_size_um or defaults[0],
        tile_size=tile_size or defaults[1],
        threshold=threshold,
        provenance={
            "imported_from": source.name,
            "format": fmt,
            "description": description,
            "pixel_size_note": "operating pixel size given at import" if pixel_size_um else "format default",
        },
    )
    return registry.register(state, card)
