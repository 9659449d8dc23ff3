"""Torch device selection."""

from __future__ import annotations

import torch

from hubseg.errors import InvalidInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; an explicit device must be available.

    ``"cuda:1"`` style indices are accepted.
    """
    if isinstance(name, torch.device):
        return name
    choice = (name or "auto").strip().lower()
    base = choice.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise InvalidInputError(f"unknown device {name!r}; valid choices: {', '.join(DEVICE_CHOICES)}")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if base == "mps" and not _mps_available():
        raise InvalidInputError("device 'mps' requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(choice)
