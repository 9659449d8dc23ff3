"""The predictor: reading tiles at model scale (optionally stain-normalised, the next batch prefetched) and the
batched forward pass, with flip TTA as a wrapper around the loaded model."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from hubseg.inference.options import CancelFn, InferenceOptions, check_cancel
from hubseg.tiling import Tile


# Flip dimensions of an N×C×H×W tensor per TTA mode: h = horizontal (width axis), v = vertical.
TTA_FLIPS = {
    "none": [()],
    "h": [(), (3,)],
    "flips": [(), (3,), (2,)],
    "all": [(), (3,), (2,), (2, 3)],
}


def autocast_dtype(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def run_batch(model, tiles_rgb: np.ndarray, tta: str, temperature: float, autocast_dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``N×T×T×3`` → (probability, negative energy), float32 ``N×T×T``, averaged over the TTA flips."""
    flips = TTA_FLIPS[tta]
    with torch.inference_mode():
        x = model.preprocess(tiles_rgb)
        prob_sum = None
        energy_sum = None
        for dims in flips:
            xin = torch.flip(x, dims) if dims else x
            if autocast_dtype is not None:
                with torch.autocast(device_type=x.device.type, dtype=autocast_dtype):
                    logits = model.logits(xin)
            else:
                logits = model.logits(xin)
            logits = logits.float()
            if dims:
                logits = torch.flip(logits, dims)
            prob = model.probability(logits)
            energy = model.negative_energy(logits, temperature)
            prob_sum = prob if prob_sum is None else prob_sum + prob
            energy_sum = energy if energy_sum is None else energy_sum + energy
        count = float(len(flips))
        prob = (prob_sum / count).float().cpu().numpy()
        energy = (energy_sum / count).float().cpu().numpy()
    return prob, energy


class Predictor:
    """The loaded model wrapped in flip TTA (and autocast on GPU): uint8 ``N×T×T×3`` → (probability, energy)."""

    def __init__(self, model, options: InferenceOptions):
        self.model = model
        self.tta = options.tta
        self.temperature = options.energy_temperature
        self.autocast_dtype = autocast_dtype(model.device, options.precision)

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return run_batch(self.model, pixels, self.tta, self.temperature, self.autocast_dtype)


class TileReader:
    """Reads a plan's tiles batch by batch at model scale, stain-normalised per tile when asked; with
    ``options.prefetch`` the next batch is read in a background thread while the model runs."""

    def __init__(self, slide, plan, options: InferenceOptions, device, stain_normalizer=None, timings: dict | None = None):
        self.slide, self.plan, self.stain_normalizer = slide, plan, stain_normalizer
        self.timings = timings if timings is not None else {"read": 0.0}
        self.tile_size = plan.grid.tile_size
        batch_size = int(options.batch_size)
        self.batches = [plan.tiles[i:i + batch_size] for i in range(0, len(plan.tiles), batch_size)]
        workers = options.read_workers or (1 if device.type == "cpu" else 4)
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self._prefetch = ThreadPoolExecutor(max_workers=1) if (options.prefetch and len(self.batches) > 1) else None

    def read(self, batch: list[Tile]) -> np.ndarray:
        """uint8 ``N×T×T×3`` pixels of ``batch``."""
        t0 = time.perf_counter()
        size, (x0, y0), downsample = self.tile_size, self.plan.region[:2], self.plan.downsample
        out = np.empty((len(batch), size, size, 3), np.uint8)

        def read_one(i: int) -> None:
            tile = batch[i]
            out[i] = self.slide.read_scaled(x0 + tile.x * downsample, y0 + tile.y * downsample, size, size, downsample)
            if self.stain_normalizer is not None:  # per tile, at model scale, before model.preprocess
                out[i] = self.stain_normalizer(out[i])

        if self._pool is not None:
            list(self._pool.map(read_one, range(len(batch))))
        else:
            for i in range(len(batch)):
                read_one(i)
        self.timings["read"] += time.perf_counter() - t0
        return out

    def batches_checked(self, should_cancel: CancelFn | None):
        """``(batch, pixels)`` in plan order; ``should_cancel()`` is checked before each batch."""
        pending = self._prefetch.submit(self.read, self.batches[0]) if (self._prefetch and self.batches) else None
        for index, batch in enumerate(self.batches):
            check_cancel(should_cancel, "between batches")
            if self._prefetch:
                pixels = pending.result()
                pending = self._prefetch.submit(self.read, self.batches[index + 1]) if index + 1 < len(self.batches) else None
            else:
                pixels = self.read(batch)
            yield batch, pixels

    def close(self) -> None:
        if self._prefetch:
            self._prefetch.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["TTA_FLIPS", "Predictor", "TileReader", "autocast_dtype", "run_batch"]
