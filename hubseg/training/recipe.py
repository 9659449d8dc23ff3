"""The fine-tune recipe for few corrections: epochs from the data, forgetting protection, ETA.

- **Epochs from the data.** ``TrainConfig.epochs = None`` ("auto") trains for about :data:`AUTO_TARGET_TILES`
  tiles in all — each epoch centres every glomerulus and every rejected object once, plus random background
  tiles from the reviewed regions — clamped to ``[AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS]``. At the measured
  ≈ 12–14 training tiles/s of the default encoder on 2 CPU cores that is ≈ 6 min of optimisation for one
  slide's corrections, leaving room for validation and calibration inside 15 min.
- **Forgetting protection** (fine-tunes only): a lower learning rate for the encoder
  (``encoder_lr_factor``), frozen BatchNorm statistics (``freeze_bn``) and an exponential moving average of
  the weights (``ema_decay``); ``docs/models.md`` has the measurement that chose the defaults.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hubseg.training.augment import IGNORE_INDEX

AUTO_TARGET_TILES = 4800
AUTO_MIN_EPOCHS = 8
AUTO_MAX_EPOCHS = 40


def auto_epochs(tiles_per_epoch: int) -> int:
    """Epochs for ``tiles_per_epoch`` training tiles: ≈ AUTO_TARGET_TILES tiles in all, clamped."""
    if tiles_per_epoch <= 0:
        return AUTO_MIN_EPOCHS
    return int(min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, math.ceil(AUTO_TARGET_TILES / tiles_per_epoch))))


def parameter_groups(module: torch.nn.Module, lr: float, encoder_lr_factor: float) -> tuple[list[dict], list[float]]:
    """AdamW parameter groups: the encoder at ``lr × encoder_lr_factor``, the rest at ``lr``; and their peak rates."""
    encoder = getattr(module, "encoder", None)
    if encoder is None or encoder_lr_factor == 1.0:
        return [{"params": list(module.parameters())}], [lr]
    encoder_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in module.parameters() if id(p) not in encoder_ids]
    return ([{"params": list(encoder.parameters())}, {"params": rest}], [lr * encoder_lr_factor, lr])


def freeze_batchnorm(module: torch.nn.Module) -> int:
    """Put every BatchNorm layer in eval mode (running statistics stay the base model's); returns how many."""
    count = 0
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.eval()
            count += 1
    return count


class WeightAverage:
    """Exponential moving average of a module's weights and buffers (``torch.optim.swa_utils.AveragedModel``)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.model = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def update(self, module: torch.nn.Module) -> None:
        self.model.update_parameters(module)

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module


def eta_text(seconds: float) -> str:
    """``"ETA 3:05"`` (minutes:seconds) for the progress line."""
    seconds = max(0, int(round(seconds)))
    return f"ETA {seconds // 60}:{seconds % 60:02d}"


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy + soft Dice on the foreground, both ignoring ``IGNORE_INDEX`` pixels."""
    valid = target != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target.long(), ignore_index=IGNORE_INDEX)
    probs = torch.softmax(logits.float(), dim=1)[:, 1]
    fg = ((target == 1) & valid).float()
    validf = valid.float()
    intersection = (probs * fg).sum()
    denominator = (probs * validf).sum() + fg.sum()
    dice = 1.0 - (2.0 * intersection + 1.0) / (denominator + 1.0)
    return ce + dice


def train_step(module, optimizer, scaler, images: torch.Tensor, targets: torch.Tensor, use_amp: bool) -> torch.Tensor:
    """One optimisation step (Dice + CE, mixed precision when ``use_amp``) on a normalised batch; returns the loss."""
    with torch.autocast(device_type=images.device.type, dtype=torch.float16, enabled=use_amp):
        logits = module(images)
    loss = dice_ce_loss(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def one_cycle_schedule(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int):
    """One-cycle LR (25 % warm-up) that stays valid for the handful of steps a quick fine-tune may have.

    torch's OneCycleLR divides by the length of each phase, so a phase of zero steps (e.g. 4 steps at
    25 % warm-up) raises ZeroDivisionError; the warm-up is stretched to at least one step, and runs
    too short for a warm-up and an anneal keep a constant rate.
    """
    if total_steps < 3:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    # OneCycleLR peaks at step pct_start * total_steps - 1: make that a whole step in [1, total_steps - 2]
    warmup_steps = min(max(1, round(0.25 * total_steps) - 1), total_steps - 2)
    pct_start = (warmup_steps + 1) / total_steps
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start, div_factor=20, final_div_factor=100
    )


__all__ = ["dice_ce_loss", "train_step", "one_cycle_schedule", "auto_epochs", "parameter_groups", "freeze_batchnorm", "WeightAverage", "eta_text",
           "AUTO_TARGET_TILES", "AUTO_MIN_EPOCHS", "AUTO_MAX_EPOCHS"]
