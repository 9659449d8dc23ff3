"""Stain normalisation (Macenko, Reinhard via torchstain's numpy backend) and HED-space stain shifts.

Two tools for slides from other labs:

- :class:`StainNormalizer` maps a tile's stain appearance onto a reference (by default the shipped
  PAS reference fitted on one AIDPATH tile, stored as parameters in ``hubseg/data/stain/``). Tiles
  with too little tissue to estimate stains from are returned unchanged (logged at debug level):
  normalising a near-blank tile would only amplify the background.
- :func:`hed_shift` perturbs the stain concentrations in haematoxylin/eosin/DAB optical-density
  space (Tellez et al. 2019, "HED jitter") — the benchmark's stain shift and a training augmentation.

Images are ``uint8`` ``H×W×3`` RGB in and out, as everywhere in hubseg.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from hubseg.errors import DependencyMissingError, InvalidInputError
from hubseg.paths import read_json_file

log = logging.getLogger(__name__)

METHODS = ("macenko", "reinhard")
"""Valid ``method`` names for :class:`StainNormalizer`."""

REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "stain"
DEFAULT_REFERENCE_PATH = REFERENCE_DIR / "aidpath-pas-reference.json"
REFERENCE_FORMAT = "hubseg-stain-reference/1"

# Macenko's optical-density conventions (torchstain's defaults): transmitted light Io, pixels whose
# OD is below BETA in any channel count as background, ALPHA is the angle percentile.
MACENKO_IO = 240
MACENKO_ALPHA = 1
MACENKO_BETA = 0.15

DEFAULT_MIN_TISSUE_FRACTION = 0.05
MIN_TISSUE_PIXELS = 256


def _check_rgb(rgb: Any, name: str = "rgb") -> np.ndarray:
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise InvalidInputError(
            f"{name} must be a uint8 H×W×3 RGB array, got dtype {array.dtype} and shape {array.shape}; "
            "convert with numpy.asarray(PIL.Image.open(path).convert('RGB'))"
        )
    return array


def _tissue_mask(rgb: np.ndarray) -> np.ndarray:
    optical_density = -np.log((rgb.astype(np.float32) + 1.0) / MACENKO_IO)
    return np.all(optical_density >= MACENKO_BETA, axis=-1)


def tissue_fraction(rgb: np.ndarray) -> float:
    """Fraction of pixels dense enough in every channel to count as stained tissue (Macenko's OD ≥ β rule)."""
    rgb = _check_rgb(rgb)
    if rgb.size == 0:
        return 0.0
    return float(np.mean(_tissue_mask(rgb)))


def _import_torchstain():
    try:
        from torchstain.numpy.normalizers import NumpyMacenkoNormalizer, NumpyReinhardNormalizer
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise DependencyMissingError(
            "stain normalisation needs the 'torchstain' package: pip install torchstain"
        ) from error
    return NumpyMacenkoNormalizer, NumpyReinhardNormalizer


def fit_reference(rgb: np.ndarray, source: str = "") -> dict:
    """Fit both methods' reference parameters on one RGB tile; returns the JSON-ready reference dict."""
    rgb = _check_rgb(rgb)
    fraction = tissue_fraction(rgb)
    if fraction < DEFAULT_MIN_TISSUE_FRACTION:
        raise InvalidInputError(
            f"the reference tile has only {fraction:.1%} tissue; choose a tile that is at least "
            f"{DEFAULT_MIN_TISSUE_FRACTION:.0%} stained tissue (ideally most of it)"
        )
    macenko_cls, reinhard_cls = _import_torchstain()
    macenko = macenko_cls()
    macenko.fit(rgb, Io=MACENKO_IO, alpha=MACENKO_ALPHA, beta=MACENKO_BETA)
    reinhard = reinhard_cls()
    # Reinhard statistics of the stained tissue only: whole-tile statistics depend on how much white
    # background a tile happens to hold, and matching them tints the background of sparse tiles.
    reinhard.fit(rgb[_tissue_mask(rgb)].reshape(-1, 1, 3))
    return {
        "format": REFERENCE_FORMAT,
        "source": source,
        "tissue_fraction": round(fraction, 4),
        "macenko": {
            "stain_matrix": np.asarray(macenko.HERef, dtype=float).round(6).tolist(),
            "max_concentrations": np.asarray(macenko.maxCRef, dtype=float).round(6).tolist(),
            "Io": MACENKO_IO,
            "alpha": MACENKO_ALPHA,
            "beta": MACENKO_BETA,
        },
        "reinhard": {
            "lab_means": np.asarray(reinhard.target_means, dtype=float).round(6).tolist(),
            "lab_stds": np.asarray(reinhard.target_stds, dtype=float).round(6).tolist(),
        },
    }


def load_reference(path: str | os.PathLike | None = None) -> dict:
    """Read a stain reference JSON (default: the shipped AIDPATH PAS reference)."""
    path = Path(path) if path is not None else DEFAULT_REFERENCE_PATH
    reference = read_json_file(
        path, "stain reference", "pass a JSON written by hubseg.stain.fit_reference or an RGB reference tile"
    )
    _validate_reference(reference, str(path))
    return reference


def _validate_reference(reference: Any, where: str) -> None:
    if not isinstance(reference, dict) or reference.get("format") != REFERENCE_FORMAT:
        raise InvalidInputError(
            f"stain reference {where} must be a dict with format {REFERENCE_FORMAT!r} "
            "(as written by hubseg.stain.fit_reference)"
        )
    try:
        matrix = np.asarray(reference["macenko"]["stain_matrix"], dtype=float)
        max_c = np.asarray(reference["macenko"]["max_concentrations"], dtype=float)
        means = np.asarray(reference["reinhard"]["lab_means"], dtype=float)
        stds = np.asarray(reference["reinhard"]["lab_stds"], dtype=float)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(f"stain reference {where} lacks {error}; refit it with fit_reference") from error
    if matrix.shape != (3, 2) or max_c.shape != (2,) or means.shape != (3,) or stds.shape != (3,):
        raise InvalidInputError(
            f"stain reference {where} has wrong shapes: stain_matrix must be 3×2, max_concentrations 2, "
            "lab_means 3, lab_stds 3"
        )


class StainNormalizer:
    """Normalise tiles' stain appearance to a reference.

    ``method``: ``"macenko"`` or ``"reinhard"``. ``reference``: ``None`` (the shipped AIDPATH PAS
    reference), a reference dict or JSON path (see :func:`fit_reference`), or a uint8 RGB tile to
    fit on. Calling the normaliser on a uint8 ``H×W×3`` tile returns a new tile of the same shape;
    tiles with less than ``min_tissue_fraction`` stained tissue, or whose stains cannot be estimated,
    come back unchanged (a debug log says why) — never an exception for a hard tile.
    """

    def __init__(self, method: str = "macenko", reference: Any = None,
                 min_tissue_fraction: float = DEFAULT_MIN_TISSUE_FRACTION):
        if not isinstance(method, str) or method.lower() not in METHODS:
            raise InvalidInputError(
                f"unknown stain normalisation method {method!r}; valid methods: {', '.join(METHODS)}"
            )
        if not 0.0 <= float(min_tissue_fraction) < 1.0:
            raise InvalidInputError(f"min_tissue_fraction must be in [0, 1), got {min_tissue_fraction}")
        self.method = method.lower()
        self.min_tissue_fraction = float(min_tissue_fraction)
        if reference is None or isinstance(reference, (str, os.PathLike)):
            self.reference = load_reference(reference)
        elif isinstance(reference, dict):
            _validate_reference(reference, "(dict)")
            self.reference = reference
        else:
            self.reference = fit_reference(_check_rgb(reference, "reference"), source="array")
        self._normalizer = self._build()

    def _build(self):
        macenko_cls, reinhard_cls = _import_torchstain()
        if self.method == "macenko":
            params = self.reference["macenko"]
            normalizer = macenko_cls()
            normalizer.HERef = np.asarray(params["stain_matrix"], dtype=float)
            normalizer.maxCRef = np.asarray(params["max_concentrations"], dtype=float)
            self._macenko_kwargs = {
                "Io": params.get("Io", MACENKO_IO),
                "alpha": params.get("alpha", MACENKO_ALPHA),
                "beta": params.get("beta", MACENKO_BETA),
            }
            return normalizer
        params = self.reference["reinhard"]
        normalizer = reinhard_cls()
        normalizer.target_means = np.asarray(params["lab_means"], dtype=np.float32)
        normalizer.target_stds = np.asarray(params["lab_stds"], dtype=np.float32)
        return normalizer

    def __repr__(self) -> str:
        return f"StainNormalizer(method={self.method!r}, reference={self.reference.get('source', '')!r})"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        rgb = _check_rgb(rgb)
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            return rgb.copy()
        tissue = _tissue_mask(rgb)
        tissue_pixels = int(tissue.sum())
        fraction = tissue_pixels / tissue.size
        if fraction < self.min_tissue_fraction or tissue_pixels < MIN_TISSUE_PIXELS:
            log.debug("stain normalisation (%s) skipped: %.1f%% tissue (%d px) is below %.1f%%; tile unchanged",
                      self.method, 100 * fraction, tissue_pixels, 100 * self.min_tissue_fraction)
            return rgb.copy()
        # Degenerate tiles (one flat colour, no stain contrast) make the estimates divide by zero or
        # produce NaN; turn those into exceptions and fall back to the unchanged tile.
        try:
            with np.errstate(divide="raise", invalid="raise", over="ignore", under="ignore"):
                if self.method == "macenko":
                    out, _, _ = self._normalizer.normalize(np.ascontiguousarray(rgb), stains=False,
                                                           **self._macenko_kwargs)
                else:
                    out = self._reinhard(rgb, tissue)
        except (FloatingPointError, ValueError, IndexError, np.linalg.LinAlgError) as error:
            log.debug("stain normalisation (%s) failed on a %dx%d tile (%s); tile unchanged",
                      self.method, rgb.shape[1], rgb.shape[0], error)
            return rgb.copy()
        return np.ascontiguousarray(out, dtype=np.uint8).reshape(rgb.shape)

    def _reinhard(self, rgb: np.ndarray, tissue: np.ndarray) -> np.ndarray:
        """Reinhard's per-channel Lab mean/std transfer, statistics from tissue pixels, applied to all.

        torchstain's own ``normalize`` takes the statistics over the whole tile (background included);
        we compose its colour conversions the same way but measure only the tissue, as for the reference.
        """
        from torchstain.numpy.utils.lab2rgb import lab2rgb
        from torchstain.numpy.utils.rgb2lab import rgb2lab
        from torchstain.numpy.utils.split import lab_merge, lab_split

        channels = lab_split(rgb2lab(rgb.astype(np.float32) / 255))
        normalised = []
        for channel, target_mean, target_std in zip(channels, self._normalizer.target_means,
                                                     self._normalizer.target_stds):
            values = channel[tissue]
            mean, std = float(values.mean()), float(values.std())
            if std < 1e-3:
                raise FloatingPointError("a Lab channel of the tissue has no variation")
            normalised.append((channel - mean) * (float(target_std) / std) + float(target_mean))
        out = lab2rgb(lab_merge(*normalised))
        return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


# --- HED-space stain shift -------------------------------------------------------------------------

# Ruifrok & Johnston's haematoxylin/eosin/DAB stain vectors (as in skimage.color.rgb_from_hed), rows
# normalised; concentrations = OD @ inverse. Using the exact inverse makes strength 0 an identity.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED)

HED_BIAS_SCALE = 0.25
"""Additive concentration shift per unit strength (natural-log OD units); ±0.05 at strength 0.2 tints
white background by about 3 %."""


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 H×W×3 stain concentrations (haematoxylin, eosin, DAB), natural-log OD units."""
    rgb = _check_rgb(rgb)
    optical_density = -np.log((rgb.astype(np.float32) + 1.0) / 256.0)
    return (optical_density @ _HED_FROM_RGB.astype(np.float32)).astype(np.float32)


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hed`, rounded and clipped to uint8."""
    optical_density = np.asarray(hed, dtype=np.float32) @ _RGB_FROM_HED.astype(np.float32)
    rgb = 256.0 * np.exp(-optical_density) - 1.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def hed_shift(rgb: np.ndarray, strength: float, rng: np.random.Generator | int | None = None,
              return_factors: bool = False):
    """Perturb stains in HED optical-density space: each stain's concentration ``c → α·c + β``.

    Per stain channel ``α ~ U(1 − strength, 1 + strength)`` (stain intensity) and
    ``β ~ U(−s, s)·HED_BIAS_SCALE`` (stain tint). ``strength`` 0 returns an identical copy; ≈0.05 is
    a light shift (another batch of the same lab), 0.2–0.3 a strong one (another lab), 0.5 extreme.
    ``rng``: a ``numpy.random.Generator`` or an int seed (same seed → same result).
    ``return_factors=True`` also returns ``(alpha, beta)`` as arrays of 3.
    """
    rgb = _check_rgb(rgb)
    strength = float(strength)
    if not 0.0 <= strength < 1.0:
        raise InvalidInputError(f"hed_shift strength must be in [0, 1), got {strength}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    alpha = generator.uniform(1.0 - strength, 1.0 + strength, size=3)
    beta = generator.uniform(-strength, strength, size=3) * HED_BIAS_SCALE
    if strength == 0.0:
        out = rgb.copy()
    else:
        hed = rgb_to_hed(rgb)
        out = hed_to_rgb(hed * alpha.astype(np.float32) + beta.astype(np.float32))
    return (out, (alpha, beta)) if return_factors else out


__all__ = [
    "METHODS",
    "DEFAULT_REFERENCE_PATH",
    "StainNormalizer",
    "fit_reference",
    "load_reference",
    "tissue_fraction",
    "hed_shift",
    "rgb_to_hed",
    "hed_to_rgb",
]
