"""Plausibility limits shared by the CLI, the library and the server.

One place for the rules so that ``hubseg detect``, ``POST /v1/detections`` and the OpenAPI document
agree. A pixel size outside the plausible range is refused before any work; one outside the band the
default model was tested on only earns a warning.
"""

from __future__ import annotations

import math

from hubseg.errors import InvalidInputError
from hubseg.tiling import planned_tiles

#: µm per pixel a whole-slide image can plausibly have (a 100× oil objective is ~0.05 µm/px; a
#: macro/overview image ~20 µm/px). Anything outside is a typo or a unit mix-up (nm, mm).
PIXEL_SIZE_MIN_UM = 0.05
PIXEL_SIZE_MAX_UM = 20.0
#: The input pixel sizes the shipped model's robustness benchmark covers.
PIXEL_SIZE_TESTED_UM = (0.2, 4.0)
#: Default cap on tiles one detection may plan. The largest real WSIs (~150k × 100k px at 0.25 µm/px)
#: need about 12k tiles at the default model's 1.5 µm/px and 256 px tiles; 60k leaves room for finer models.
DEFAULT_MAX_TILES = 60_000


def check_pixel_size(value, field: str = "pixel_size_um") -> float:
    """Return ``value`` as a float if it is a plausible pixel size, else raise naming ``field`` and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field} must be a number of µm per pixel; got {value!r}") from None
    if not math.isfinite(number) or not (PIXEL_SIZE_MIN_UM <= number <= PIXEL_SIZE_MAX_UM):
        raise InvalidInputError(
            f"{field} must be between {PIXEL_SIZE_MIN_UM} and {PIXEL_SIZE_MAX_UM} µm per pixel; got {value!r} "
            "(check the unit: 0.25 µm/px is a 40× scan, 0.5 µm/px a 20× scan)"
        )
    return number


def pixel_size_warning(value: float) -> str | None:
    """A one-line warning when ``value`` is plausible but outside the tested band, else None."""
    low, high = PIXEL_SIZE_TESTED_UM
    if low <= value <= high:
        return None
    return f"pixel size {value:g} µm/px is outside the tested range {low:g}–{high:g} µm/px; check the results carefully"


def check_tile_budget(n_tiles: int, max_tiles: int, field: str = "region", flag: str = "hubseg serve --max-tiles") -> None:
    """Refuse a job that would plan more tiles than ``max_tiles`` (a mistaken pixel size or a huge region);
    ``flag`` is how the user raises the limit."""
    if n_tiles > max_tiles:
        raise InvalidInputError(
            f"{field} needs {n_tiles} tiles at the model's pixel size, more than the limit of {max_tiles}; "
            f"check the pixel size, choose a smaller region, or raise the limit ({flag})"
        )


def check_slide_budget(slide_pixel_size_um: float, size: tuple[float, float], model_card, max_tiles: int,
                       field: str = "image", flag: str = "hubseg serve --max-tiles") -> int:
    """The tiles a ``size`` (level-0 w, h) area at ``slide_pixel_size_um`` needs at ``model_card``'s pixel size and
    tile size; refused (naming ``field``) above ``max_tiles``. The one budget rule for detections, batches,
    self-training and ``hubseg adapt``."""
    tiles = planned_tiles(slide_pixel_size_um, size, model_card.pixel_size_um, model_card.tile_size)
    check_tile_budget(tiles, max_tiles, field, flag)
    return tiles


__all__ = [
    "PIXEL_SIZE_MIN_UM", "PIXEL_SIZE_MAX_UM", "PIXEL_SIZE_TESTED_UM", "DEFAULT_MAX_TILES",
    "check_pixel_size", "pixel_size_warning", "check_tile_budget", "check_slide_budget",
]


#: Reference objects marked per image: a handful of examples beside the uncertain list, not a second list.
MAX_REFERENCES = 100


def check_references(value, field: str = "references") -> int:
    """``value`` as the number of reference objects to mark (0..MAX_REFERENCES), else raise naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REFERENCES:
        raise InvalidInputError(f"{field} must be an integer from 0 to {MAX_REFERENCES} (0 marks none); got {value!r}")
    return value
