#!/usr/bin/env python
"""Training throughput per encoder: iterations/s and images/s of the real training step (augmentation,
forward, Dice+CE, backward, AdamW) on synthetic tiles, side by side, on the CPU (and CUDA if present).

    .venv/bin/python scripts/bench_train.py                 # lite0, resnet18, mobilenet_v2 on the CPU
    .venv/bin/python scripts/bench_train.py --iterations 10 --tile 256 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from hubseg.models.architectures import build_module, smp_unet_architecture
from hubseg.training.augment import build_augmentation, read_size
from hubseg.training.recipe import train_step
from hubseg.training.trainer import DEFAULT_DECODER_CHANNELS

DEFAULT_ENCODERS = ("timm-tf_efficientnet_lite0", "resnet18", "mobilenet_v2")


def bench(encoder: str, device: torch.device, tile: int, batch: int, iterations: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_module(smp_unet_architecture(encoder, decoder_channels=DEFAULT_DECODER_CHANNELS)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    augment = build_augmentation(tile, "default", seed=0)
    rng = np.random.default_rng(0)
    window = read_size(tile)
    rgb = rng.integers(0, 255, (batch, window, window, 3), dtype=np.uint8)
    masks = (rng.random((batch, window, window)) > 0.7).astype(np.uint8)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def step() -> None:
        out = [augment(image=rgb[i], mask=masks[i]) for i in range(batch)]
        x = torch.from_numpy(np.stack([o["image"] for o in out])).to(device).permute(0, 3, 1, 2).float() / 255.0
        y = torch.from_numpy(np.stack([o["mask"] for o in out])).to(device)
        train_step(model, optimizer, scaler, x, y, use_amp)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "encoder": encoder,
        "device": str(device),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "it_s": iterations / seconds,
        "img_s": iterations * batch / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=list(DEFAULT_ENCODERS))
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"training step: batch {args.batch}, tile {args.tile}, {args.iterations} timed iterations, "
          f"{args.threads} CPU thread(s), torch {torch.__version__}")
    print(f"{'encoder':<28} {'device':<6} {'params M':>8} {'it/s':>8} {'img/s':>8}")
    for device in devices:
        for encoder in args.encoders:
            row = bench(encoder, torch.device(device), args.tile, args.batch, args.iterations, args.warmup)
            print(f"{row['encoder']:<28} {row['device']:<6} {row['params_m']:>8.2f} {row['it_s']:>8.3f} {row['img_s']:>8.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
