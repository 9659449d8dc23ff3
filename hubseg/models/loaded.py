"""A model ready to run: its card, its torch module on a device, and the pre/post-processing the card implies."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hubseg.errors import InvalidInputError
from hubseg.models.card import ModelCard
from hubseg.models.devices import resolve_device

# Encoders downsample by up to 32; inputs are reflect-padded to a multiple of this and cropped back.
INPUT_MULTIPLE = 32


def tiles_to_tensor(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 RGB tiles ``N×H×W×3`` (or one ``H×W×3``) → float ``N×3×H×W`` in 0..1 on ``device``."""
    array = np.asarray(batch)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise InvalidInputError(f"expected RGB tiles shaped N×H×W×3, got {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return tensor.permute(0, 3, 1, 2).float().div_(255.0)


class LoadedModel:
    """``card`` + ``module`` (put in eval mode on ``device``).

    ``preprocess`` turns uint8 RGB tiles into the normalised tensor the module expects, ``logits`` runs the
    module without gradients and returns logits at the input's resolution, ``probability`` and
    ``negative_energy`` turn logits into per-pixel maps.
    """

    def __init__(self, card: ModelCard, module: torch.nn.Module, device: str | torch.device = "cpu"):
        self.card = card
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        norm = card.normalization
        self._mean = torch.tensor(norm["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(norm["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    @property
    def name(self) -> str:
        return self.card.name

    def __repr__(self) -> str:
        return f"LoadedModel({self.card.name!r}, device={self.device})"

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 ``N×H×W×3`` (or one ``H×W×3``) → float ``N×3×H×W`` on the device, ÷255 and normalised."""
        return self.normalize(tiles_to_tensor(batch, self.device))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """0..1 float ``N×3×H×W`` → the card's normalisation (an ensemble normalises per member with this)."""
        return (x.to(self.device) - self._mean) / self._std

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``N×C×H×W`` logits at the resolution of ``x`` (coarser outputs are upsampled bilinearly)."""
        x = x.to(self.device)
        height, width = x.shape[-2:]
        pad_h = (-height) % INPUT_MULTIPLE
        pad_w = (-width) % INPUT_MULTIPLE
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        out = self.module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out[..., :height, :width].float()

    @staticmethod
    def probability(logits: torch.Tensor) -> torch.Tensor:
        """Foreground probability ``N×H×W``: softmax channel 1 for two classes, sigmoid for one."""
        if logits.shape[1] == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=1)[:, 1]

    @staticmethod
    def negative_energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """``T·logsumexp(logits/T)`` over classes, ``N×H×W`` (high = confident, in-distribution)."""
        if logits.shape[1] == 1:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        t = float(temperature)
        return t * torch.logsumexp(logits / t, dim=1)

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Convenience: uint8 tiles → (probability, negative energy) as float32 numpy ``N×H×W``."""
        logits = self.logits(self.preprocess(batch))
        return (
            self.probability(logits).cpu().numpy().astype(np.float32),
            self.negative_energy(logits).cpu().numpy().astype(np.float32),
        )
