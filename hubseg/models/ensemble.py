"""Model ensembles: several registered models at one pixel size, run as one model.

An ensemble is a model card whose ``architecture`` is ``{"kind": "ensemble", "members": [{"name",
"weights_sha256"}, ...]}`` and whose folder holds no weights: the members are ordinary registered models,
resolved by name and checked by sha256 (:func:`resolve_members`). :class:`EnsembleModel` has the
:class:`~hubseg.models.loaded.LoadedModel` interface, so tiling, blending, bands, cancel and progress of
:mod:`hubseg.inference` apply unchanged: per tile batch the members run one after another.

Combination: the foreground probability is the mean of the members' probabilities; the negative energy is
computed on the mean of the members' logits (the free energy of the averaged classifier). ``logits`` returns
the members' logits side by side along the channel axis (``N×(M·C)×H×W``) so both can be derived from it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from hubseg.errors import InvalidInputError, NotFoundError
from hubseg.models.card import ModelCard
from hubseg.models.loaded import LoadedModel, tiles_to_tensor

ENSEMBLE_KIND = "ensemble"
MAX_MEMBERS = 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_ensemble(card: ModelCard) -> bool:
    return isinstance(card.architecture, dict) and card.architecture.get("kind") == ENSEMBLE_KIND


def members_digest(members: Iterable[dict[str, Any]]) -> str:
    """The ensemble's ``weights_sha256``: sha256 over its members' weight digests in order (identifies the weights)."""
    digest = hashlib.sha256()
    for member in members:
        digest.update(str(member["weights_sha256"]).encode("ascii") + b"\n")
    return digest.hexdigest()


def ensemble_architecture(member_cards: list[ModelCard]) -> dict[str, Any]:
    """The ``architecture`` dict of an ensemble of these (registered) member cards."""
    return {"kind": ENSEMBLE_KIND, "combine": "mean probability; energy of the mean logits",
            "members": [{"name": c.name, "weights_sha256": c.weights_sha256} for c in member_cards]}


def check_ensemble_card(card: ModelCard) -> list[dict[str, str]]:
    """The members of an ensemble card after checking their form; raises ``InvalidInputError`` naming the field."""
    members = card.architecture.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
        raise InvalidInputError(
            f"ensemble card '{card.name}': architecture.members must be a list of 1 to {MAX_MEMBERS} "
            '{"name": ..., "weights_sha256": ...} objects'
        )
    for index, member in enumerate(members):
        if not isinstance(member, dict) or not isinstance(member.get("name"), str) or not member["name"]:
            raise InvalidInputError(f"ensemble card '{card.name}': architecture.members[{index}].name must be a model name")
        if not _SHA256.match(str(member.get("weights_sha256", ""))):
            raise InvalidInputError(
                f"ensemble card '{card.name}': architecture.members[{index}].weights_sha256 must be the member's "
                "64-hex-digit weights sha256 (see `hubseg models show NAME`)"
            )
    return members


def resolve_members(card: ModelCard, folders: dict[str, Path]) -> list[Path]:
    """The folder of each member of an ensemble card among ``folders`` (name → model folder).

    A member is found by name when that model's card has the member's sha256, else by sha256 under any name
    (a renamed copy); a member found by name with other weights, or not at all, is an error saying which.
    Members must be single models (no nested ensembles) at the ensemble's pixel size.
    """
    found: list[Path] = []
    by_sha: dict[str, Path] | None = None
    for member in check_ensemble_card(card):
        name, sha = member["name"], member["weights_sha256"]
        folder = folders.get(name)
        member_card = ModelCard.load(folder) if folder is not None else None
        if member_card is None or member_card.weights_sha256 != sha:
            if by_sha is None:
                by_sha = {}
                for other in folders.values():
                    try:
                        by_sha.setdefault(ModelCard.load(other).weights_sha256, other)
                    except InvalidInputError:
                        continue  # an unreadable card elsewhere must not hide the member
            if sha not in by_sha:
                if member_card is not None:
                    raise InvalidInputError(
                        f"ensemble '{card.name}': member '{name}' is registered with other weights "
                        f"(sha256 {member_card.weights_sha256[:12]}…, the ensemble needs {sha[:12]}…); restore that "
                        "version or build a new ensemble from the current members"
                    )
                valid = ", ".join(sorted(folders)) or "(none registered)"
                raise NotFoundError(
                    f"ensemble '{card.name}': member '{name}' (sha256 {sha[:12]}…) is not registered; "
                    f"registered models: {valid}"
                )
            folder = by_sha[sha]
            member_card = ModelCard.load(folder)
        if is_ensemble(member_card):
            raise InvalidInputError(f"ensemble '{card.name}': member '{name}' is itself an ensemble; list its members instead")
        if abs(member_card.pixel_size_um - card.pixel_size_um) > 1e-9:
            raise InvalidInputError(
                f"ensemble '{card.name}': member '{name}' works at {member_card.pixel_size_um} µm/px but the ensemble "
                f"at {card.pixel_size_um} µm/px; all members must share one pixel size"
            )
        found.append(folder)
    return found


class EnsembleModel:
    """Members (:class:`LoadedModel`) behind the ``LoadedModel`` interface; see the module docstring.

    TTA: :func:`hubseg.inference.run_batch` flips the input, calls ``logits`` and flips back, so every member
    sees every flip. Mean probabilities over (flip, member) pairs do not depend on the order of the two means,
    so TTA around the ensemble equals TTA applied per member and then averaged. Energy is taken per flip on the
    members' mean logits and then averaged over flips, exactly as a single model's energy is per flip.
    """

    def __init__(self, card: ModelCard, members: list[LoadedModel]):
        if not members:
            raise InvalidInputError(f"ensemble '{card.name}' has no members")
        classes = {self._classes(m) for m in members}
        if len(classes) != 1:
            raise InvalidInputError(f"ensemble '{card.name}': members must have the same number of classes, got {sorted(classes)}")
        self.card = card
        self.members = list(members)
        self.device = members[0].device
        self._classes_per_member = classes.pop()

    @staticmethod
    def _classes(member: LoadedModel) -> int:
        return int(member.card.architecture.get("classes", 2))

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def module(self):
        raise InvalidInputError(
            f"model '{self.card.name}' is an ensemble and has no single network; use its members (.members)"
        )

    def __repr__(self) -> str:
        return f"EnsembleModel({self.card.name!r}, members={[m.name for m in self.members]}, device={self.device})"

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 ``N×H×W×3`` → 0..1 float ``N×3×H×W``; each member applies its own normalisation in ``logits``."""
        return tiles_to_tensor(batch, self.device)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The members' logits side by side, ``N×(M·C)×H×W``; members run one after another."""
        return torch.cat([member.logits(member.normalize(x)) for member in self.members], dim=1)

    def split(self, logits: torch.Tensor) -> torch.Tensor:
        """``N×(M·C)×H×W`` → ``M×N×C×H×W``."""
        n, _, h, w = logits.shape
        return logits.reshape(n, len(self.members), self._classes_per_member, h, w).transpose(0, 1)

    def member_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Each member's foreground probability, ``M×N×H×W``."""
        return torch.stack([LoadedModel.probability(part) for part in self.split(logits)])

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean of the members' foreground probabilities, ``N×H×W``."""
        return self.member_probabilities(logits).mean(dim=0)

    def negative_energy(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """``T·logsumexp`` of the members' mean logits, ``N×H×W``."""
        return LoadedModel.negative_energy(self.split(logits).mean(dim=0), temperature)

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = self.logits(self.preprocess(batch))
        return (
            self.probability(logits).cpu().numpy().astype(np.float32),
            self.negative_energy(logits).cpu().numpy().astype(np.float32),
        )


def ensemble_card(name: str, member_cards: list[ModelCard], **fields: Any) -> ModelCard:
    """A new ensemble card over registered members; pixel size, tile size, normalisation, class and threshold
    come from the first member unless given in ``fields``."""
    if not member_cards:
        raise InvalidInputError("an ensemble needs at least one member")
    first = member_cards[0]
    values = {
        "name": name, "architecture": ensemble_architecture(member_cards), "pixel_size_um": first.pixel_size_um,
        "tile_size": first.tile_size, "threshold": first.threshold, "class_name": first.class_name,
        "class_color": list(first.class_color), "normalization": first.normalization,
        "stain_normalization": first.stain_normalization,
        "provenance": {"kind": "ensemble", "members": [c.name for c in member_cards]},
    }
    values.update(fields)
    card = ModelCard(**values)
    card.weights_sha256 = members_digest(card.architecture["members"])
    return card


__all__ = ["ENSEMBLE_KIND", "EnsembleModel", "is_ensemble", "resolve_members", "ensemble_card", "members_digest",
           "check_ensemble_card", "ensemble_architecture"]
