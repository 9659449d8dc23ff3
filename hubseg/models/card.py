"""The model card: everything needed to run a model version correctly, as one JSON file beside its weights."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubseg.errors import InvalidInputError
from hubseg.paths import atomic_write_text, read_json_file

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

STAIN_NORMALIZATIONS = ("macenko", "reinhard")
"""Valid values of :attr:`ModelCard.stain_normalization` besides ``None`` (see :mod:`hubseg.stain`)."""

CARD_FILENAME = "card.json"
WEIGHTS_FILENAME = "weights.safetensors"
REFERENCES_FOLDER = "references"  # reference crops beside the card (hubseg.training.references)
_REFERENCE_FILE = re.compile(r"^references/[0-9]{1,3}\.(jpg|png)$")


def _default_architecture() -> dict[str, Any]:
    return {
        "kind": "smp",
        "arch": "Unet",
        "encoder": "timm-tf_efficientnet_lite0",
        "decoder_attention_type": "scse",
        "classes": 2,
    }


@dataclass
class ModelCard:
    """Metadata of one model version (``docs/architecture.md``, "Models").

    ``normalization`` applies to inputs scaled to 0..1; ``pixel_size_um`` is the operating scale the model
    was trained at (tiles are read at this pixel size whatever the slide's); ``energy_gate`` is the
    calibrated cut-off on an object's mean energy (``None`` when the model was never validated);
    ``stain_normalization`` (``"macenko"``, ``"reinhard"`` or ``None``) is the stain normalisation the model
    was trained with, applied per tile by detection unless the caller overrides it (cards without the
    key load as ``None``); ``review_model`` is the calibrated review score (:mod:`hubseg.review_score`: features,
    standardisation, coefficients, intercept, n, out-of-fold AUROC of the score and of energy alone, cut-off,
    calibration source) — when present, detection gates and orders objects by it instead of energy alone;
    ``references`` lists reference crops stored beside the card (``file``, ``sha256``, ``width``, ``height``,
    ``pixel_size_um``, ``image``, ``area_um2``, ``energy``, ``review_score``: :mod:`hubseg.training.references`).
    """

    name: str
    family: str = ""
    version: int = 1
    architecture: dict[str, Any] = field(default_factory=_default_architecture)
    normalization: dict[str, list[float]] = field(
        default_factory=lambda: {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    )
    pixel_size_um: float = 1.5
    tile_size: int = 256
    threshold: float = 0.5
    class_name: str = "Glomerulus"
    class_color: list[int] = field(default_factory=lambda: [0, 200, 0])
    energy_gate: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    created: str = ""
    stain_normalization: str | None = None
    review_model: dict[str, Any] | None = None
    references: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError("model card field 'name' must be a non-empty string")
        if not self.family:
            self.family = family_of(self.name)
        try:
            self.pixel_size_um = float(self.pixel_size_um)
            self.tile_size = int(self.tile_size)
            self.threshold = float(self.threshold)
            self.version = int(self.version)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"model card '{self.name}': numeric field has a wrong type ({error})") from None
        if not self.pixel_size_um > 0:
            raise InvalidInputError(f"model card '{self.name}': 'pixel_size_um' must be > 0, got {self.pixel_size_um}")
        if self.tile_size < 16:
            raise InvalidInputError(f"model card '{self.name}': 'tile_size' must be >= 16, got {self.tile_size}")
        if not 0.0 < self.threshold < 1.0:
            raise InvalidInputError(f"model card '{self.name}': 'threshold' must be in (0, 1), got {self.threshold}")
        norm = self.normalization or {}
        if sorted(norm) != ["mean", "std"] or len(norm["mean"]) != 3 or len(norm["std"]) != 3:
            raise InvalidInputError(
                f"model card '{self.name}': 'normalization' must be {{\"mean\": [3 floats], \"std\": [3 floats]}}"
            )
        if self.stain_normalization is not None and self.stain_normalization not in STAIN_NORMALIZATIONS:
            raise InvalidInputError(
                f"model card '{self.name}': 'stain_normalization' must be null or one of "
                f"{', '.join(STAIN_NORMALIZATIONS)}; got {self.stain_normalization!r}"
            )
        if self.review_model is not None and not (
            isinstance(self.review_model, dict)
            and {"coefficients", "intercept", "standardisation"} <= set(self.review_model)
        ):
            raise InvalidInputError(
                f"model card '{self.name}': 'review_model' must be null or an object with 'coefficients', "
                "'intercept' and 'standardisation' (see hubseg.review_score)"
            )
        self._check_references()
        if not isinstance(self.architecture, dict) or "kind" not in self.architecture:
            raise InvalidInputError(
                f"model card '{self.name}': 'architecture' must be an object with a 'kind' (\"smp\" or \"tuberlin\")"
            )

    def _check_references(self) -> None:
        if not isinstance(self.references, list):
            raise InvalidInputError(f"model card '{self.name}': 'references' must be a list of reference crops")
        for index, entry in enumerate(self.references):
            if not isinstance(entry, dict) or not _REFERENCE_FILE.match(str(entry.get("file", ""))) \
                    or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
                raise InvalidInputError(
                    f"model card '{self.name}': references[{index}] must have 'file' (references/<n>.jpg or .png, "
                    "beside the card) and the file's 'sha256'"
                )

    # --- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (a deep copy)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        """Build a card from a dict; unknown keys are rejected (they would be silently lost otherwise)."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"a model card must be a JSON object, got {type(data).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise InvalidInputError(
                f"unknown model card key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}"
            )
        if "name" not in data:
            raise InvalidInputError("model card is missing the required key 'name'")
        return cls(**json.loads(json.dumps(data)))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card atomically to ``path`` (a file, or a folder which gets ``card.json``)."""
        target = Path(path)
        if target.is_dir():
            target = target / CARD_FILENAME
        return atomic_write_text(target, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelCard":
        """Read a card from ``card.json`` or from a model folder containing it."""
        source = Path(path)
        if source.is_dir():
            source = source / CARD_FILENAME
        data = read_json_file(source, "model card", f"pass a model folder holding {CARD_FILENAME} or its path")
        return cls.from_dict(data)


def family_of(name: str) -> str:
    """``"hubseg-pas-glomeruli-v3"`` → ``"hubseg-pas-glomeruli"``; names without ``-v<N>`` are their own family."""
    head, sep, tail = name.rpartition("-v")
    if sep and head and tail.isdigit():
        return head
    return name
