"""Inference options, the progress/cancel callback types, and the stain-normalisation choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hubseg.choices import STAIN_NORMALIZATION_CHOICES, TTA_MODES
from hubseg.errors import Cancelled, InvalidInputError

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


# Maps larger than this many pixels are stitched to disk instead of RAM.
DEFAULT_IN_MEMORY_PIXELS = 8 * 1024 * 1024


@dataclass
class InferenceOptions:
    """How tiles are cut and run. ``None`` means "the model card's value" (tile size) or a derived default."""

    tile_size: int | None = None
    overlap: int | None = None  # default: tile_size // 4
    tta: str = "flips"
    batch_size: int = 8
    precision: str = "auto"  # autocast on GPU only: auto = bf16 if supported else fp16; fp32 disables
    energy_temperature: float = 1.0
    tissue_detection: bool = True
    tissue_pixel_size_um: float | None = None
    disk_backed: bool | None = None  # None: automatic (large maps go to disk)
    in_memory_pixels: int = DEFAULT_IN_MEMORY_PIXELS
    prefetch: bool = True  # read the next batch in a background thread while the model runs
    read_workers: int | None = None  # threads reading tiles of one batch; None: 1 on CPU, 4 on a GPU
    stain_normalization: str = "model"  # model (the card's) | none | macenko | reinhard, per tile
    max_tiles: int | None = None  # refuse (InvalidInputError) a region needing more tiles; None = no cap

    def validate(self) -> None:
        if self.stain_normalization not in STAIN_NORMALIZATION_CHOICES:
            raise InvalidInputError(
                f"stain_normalization must be one of {', '.join(STAIN_NORMALIZATION_CHOICES)}; "
                f"got {self.stain_normalization!r}"
            )
        if self.tta not in TTA_MODES:
            raise InvalidInputError(f"tta must be one of {', '.join(TTA_MODES)}; got {self.tta!r}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if int(self.batch_size) < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.tile_size is not None and not 16 <= int(self.tile_size) <= 4096:
            raise InvalidInputError(f"tile size must be between 16 and 4096 px, got {self.tile_size}")
        if not self.energy_temperature > 0:
            raise InvalidInputError(f"energy temperature must be > 0, got {self.energy_temperature}")


def check_cancel(should_cancel: CancelFn | None, where: str) -> None:
    """Raise :class:`hubseg.errors.Cancelled` when ``should_cancel()`` says so."""
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"detection cancelled {where}")


def resolve_stain_normalization(choice: str, card) -> str | None:
    """The stain normalisation method a detection uses: ``choice`` unless ``"model"`` (then the card's); None = off."""
    if choice not in STAIN_NORMALIZATION_CHOICES:
        raise InvalidInputError(
            f"stain_normalization must be one of {', '.join(STAIN_NORMALIZATION_CHOICES)}; got {choice!r}"
        )
    if choice == "model":
        return getattr(card, "stain_normalization", None)
    return None if choice == "none" else choice


def build_stain_normalizer(choice: str, card):
    """A :class:`hubseg.stain.StainNormalizer` for ``choice`` (see :func:`resolve_stain_normalization`) or None."""
    method = resolve_stain_normalization(choice, card)
    if method is None:
        return None
    from hubseg.stain import StainNormalizer  # torchstain is only needed when normalising

    return StainNormalizer(method)
