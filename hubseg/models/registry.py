"""The model registry: shipped models (inside the package) + user models (``<data_dir>/models``), one active.

Each model version is a folder ``NAME/`` with ``card.json`` and ``weights.safetensors``. Names are unique
across both places and never overwritten: a fine-tune registers ``<family>-v<N+1>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from hubseg.errors import ConflictError, InvalidInputError, NotFoundError
from hubseg.models.architectures import build_module
from hubseg.models.card import CARD_FILENAME, WEIGHTS_FILENAME, ModelCard, family_of
from hubseg.models.ensemble import EnsembleModel, is_ensemble, members_digest, resolve_members
from hubseg.models.loaded import LoadedModel
from hubseg.paths import atomic_write_text, current_umask, data_dir as resolve_data_dir

DEFAULT_MODEL_NAME = "hubseg-pas-glomeruli-v1"
SHIPPED_MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
ACTIVE_FILENAME = "active_model"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_weights(folder: Path, card: ModelCard) -> dict[str, torch.Tensor]:
    """Read ``weights.safetensors`` after checking its sha256 against the card; floats come back as fp32."""
    from safetensors.torch import load_file

    weights = folder / WEIGHTS_FILENAME
    if not weights.is_file():
        raise NotFoundError(f"model '{card.name}' has no weights file {weights}")
    if card.weights_sha256:
        actual = sha256_file(weights)
        if actual != card.weights_sha256:
            raise InvalidInputError(
                f"weights of model '{card.name}' are corrupt or were replaced: sha256 {actual} != card "
                f"weights_sha256 {card.weights_sha256}; re-import or re-train the model"
            )
    state = load_file(str(weights))  # safetensors: plain tensors, never unpickles
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def model_folders(*roots: Path) -> dict[str, Path]:
    """Model folders (name → folder) under ``roots``; an earlier root wins a name (shipped before user)."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or not (folder / CARD_FILENAME).is_file():
                continue
            found.setdefault(folder.name, folder)
    return found


def load_model_folder(folder: str | os.PathLike, device: str | torch.device = "auto",
                      folders: dict[str, Path] | None = None) -> LoadedModel | EnsembleModel:
    """Load a model folder (or its card.json) directly, outside any registry.

    An ensemble's members are looked up in ``folders`` (name → folder; default: the shipped models and the
    ensemble folder's siblings, which is where a registry keeps them).
    """
    path = Path(folder)
    if path.is_file():
        path = path.parent
    card = ModelCard.load(path)
    if is_ensemble(card):
        if folders is None:
            folders = model_folders(SHIPPED_MODELS_DIR, path.parent)
        members = [load_model_folder(member, device=device) for member in resolve_members(card, folders)]
        return EnsembleModel(card, members)
    module = build_module(card.architecture)
    state = read_weights(path, card)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InvalidInputError(
            f"weights of model '{card.name}' do not fit its architecture {card.architecture}: {str(error)[:400]}"
        ) from None
    return LoadedModel(card, module, device=device)


class ModelRegistry:
    """Models by name: ``list``, ``card``, ``load``, ``active_name``, ``activate``, ``register``."""

    def __init__(self, data_dir: str | os.PathLike | None = None, shipped_dir: str | os.PathLike | None = None):
        self.data_dir = resolve_data_dir(data_dir)
        self.user_dir = self.data_dir / "models"
        self.shipped_dir = Path(shipped_dir) if shipped_dir is not None else SHIPPED_MODELS_DIR

    # --- lookup ----------------------------------------------------------------------------------------
    def _folders(self) -> dict[str, Path]:
        return model_folders(self.shipped_dir, self.user_dir)  # user models cannot shadow shipped ones

    def folders(self) -> dict[str, Path]:
        """Every model's folder by name (shipped and user)."""
        return self._folders()

    def names(self) -> list[str]:
        return sorted(self._folders())

    def list(self) -> list[ModelCard]:
        """Cards of all models, shipped and user, sorted by name."""
        return [ModelCard.load(folder) for _, folder in sorted(self._folders().items())]

    def path(self, name: str) -> Path:
        """The folder of a model; a path to a model folder or card.json is accepted too."""
        folders = self._folders()
        if name in folders:
            return folders[name]
        candidate = Path(name).expanduser()
        if candidate.name == CARD_FILENAME and candidate.is_file():
            return candidate.parent
        if candidate.is_dir() and (candidate / CARD_FILENAME).is_file():
            return candidate
        valid = ", ".join(sorted(folders)) or "(none registered)"
        raise NotFoundError(f"unknown model {name!r}; valid names: {valid} (or a path to a model folder/card.json)")

    def card(self, name: str | None = None) -> ModelCard:
        return ModelCard.load(self.path(name or self.active_name()))

    def is_shipped(self, name: str) -> bool:
        return self._folders().get(name, Path()).parent == self.shipped_dir

    def load(self, name: str | None = None, device: str | torch.device = "auto") -> LoadedModel | EnsembleModel:
        """Load a model by name or path (``None`` = the active model) onto ``device``; an ensemble's members are
        resolved among this registry's models."""
        return load_model_folder(self.path(name or self.active_name()), device=device, folders=self._folders())

    def reference_crop(self, name: str, index: int) -> tuple[bytes, str]:
        """Reference crop ``index`` (1-based, as listed in the card's ``references``) of a registered model:
        (bytes, media type), checked against the card's sha256."""
        folder = self.path(name)
        card = ModelCard.load(folder)
        if not 1 <= int(index) <= len(card.references):
            raise NotFoundError(
                f"model {card.name!r} has {len(card.references)} reference crop(s); valid indexes: "
                f"{', '.join(str(i) for i in range(1, len(card.references) + 1)) or '(none)'}"
            )
        entry = card.references[int(index) - 1]
        path = folder / entry["file"]
        if not path.is_file():
            raise NotFoundError(f"reference crop {entry['file']} of model {card.name!r} is missing from {folder}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise InvalidInputError(f"reference crop {entry['file']} of model {card.name!r} does not match its sha256")
        return data, "image/png" if path.suffix == ".png" else "image/jpeg"

    # --- active model ----------------------------------------------------------------------------------
    def active_name(self) -> str:
        """The active model: ``<data_dir>/active_model`` if it names a known model, else the shipped default."""
        pointer = self.data_dir / ACTIVE_FILENAME
        if pointer.is_file():
            name = pointer.read_text(encoding="utf-8").strip()
            if name in self._folders():
                return name
        return DEFAULT_MODEL_NAME

    def activate(self, name: str) -> ModelCard:
        card = self.card(name)
        if card.name not in self._folders():
            raise NotFoundError(f"only registered models can be activated; register {name!r} first")
        atomic_write_text(self.data_dir / ACTIVE_FILENAME, card.name + "\n")
        return card

    def delete(self, name: str) -> Path:
        """Remove a user model folder; shipped models and the active model are refused. Returns the removed path.

        The folder is first renamed to a hidden name in the same directory, so a crash mid-way never leaves
        a half-deleted model that still lists.
        """
        folders = self._folders()
        if name not in folders:
            valid = ", ".join(n for n in sorted(folders) if not self.is_shipped(n)) or "(none)"
            raise NotFoundError(f"unknown model {name!r}; your models: {valid}")
        if self.is_shipped(name):
            raise ConflictError(f"model {name!r} is shipped with hubseg and cannot be deleted (it is part of the package)")
        if name == self.active_name():
            raise ConflictError(
                f"model {name!r} is the active model; activate another first (hubseg models activate NAME)"
            )
        users = self._ensembles_using(name)
        if users:
            raise ConflictError(
                f"model {name!r} is a member of the ensemble(s) {', '.join(users)}; delete those first "
                "(hubseg models delete NAME), or they could no longer run"
            )
        folder = folders[name]
        trash = folder.with_name(f".deleting-{name}-{os.getpid()}")
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return folder

    def _ensembles_using(self, name: str) -> list[str]:
        sha = ModelCard.load(self._folders()[name]).weights_sha256
        users = []
        for other, folder in self._folders().items():
            try:
                card = ModelCard.load(folder)
            except InvalidInputError:
                continue  # an unreadable card elsewhere does not block deleting this one
            if is_ensemble(card) and any(m.get("name") == name or m.get("weights_sha256") == sha
                                         for m in card.architecture.get("members") or [] if isinstance(m, dict)):
                users.append(other)
        return users

    # --- registration ----------------------------------------------------------------------------------
    def next_version_name(self, family: str) -> str:
        """``<family>-v<N>`` with N one above every existing version of the family (1 for a new family)."""
        family = family_of(family)
        highest = 0
        for name in self._folders():
            head, sep, tail = name.rpartition("-v")
            if sep and head == family and tail.isdigit():
                highest = max(highest, int(tail))
        return f"{family}-v{highest + 1}"

    def _check_new_name(self, card: ModelCard) -> None:
        if not _NAME_PATTERN.match(card.name):
            raise InvalidInputError(
                f"invalid model name {card.name!r}: use letters, digits, '.', '_' and '-' (max 100 characters)"
            )
        if card.name in self._folders():
            raise ConflictError(
                f"model {card.name!r} already exists and is never overwritten; "
                f"use a new name such as {self.next_version_name(card.family or card.name)!r}"
            )

    def register_ensemble(self, card: ModelCard) -> ModelCard:
        """Store an ensemble card (no weights: its members must be registered here, checked by sha256)."""
        if not is_ensemble(card):
            raise InvalidInputError(f"model card {card.name!r} is not an ensemble (architecture.kind 'ensemble')")
        self._check_new_name(card)
        resolve_members(card, self._folders())
        card = ModelCard.from_dict(card.to_dict())
        card.weights_sha256 = members_digest(card.architecture["members"])
        card.created = card.created or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        self.user_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{card.name}.", dir=self.user_dir))
        try:
            os.chmod(staging, 0o777 & ~current_umask())
            card.save(staging / CARD_FILENAME)
            target = self.user_dir / card.name
            if target.exists():
                raise ConflictError(f"model {card.name!r} was created concurrently; choose another name")
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return card

    def register(
        self, state_dict: dict[str, torch.Tensor], card: ModelCard, *, dtype: torch.dtype | None = None
    ) -> ModelCard:
        """Store weights + card as a new user model; returns the card with ``weights_sha256``/``created`` set.

        The state dict must load strictly into the card's architecture. ``dtype=torch.float16`` halves the
        file (weights come back as fp32 on load). An existing name raises ``ConflictError``.
        """
        from safetensors.torch import save_file

        self._check_new_name(card)
        if is_ensemble(card):
            raise InvalidInputError(f"model card {card.name!r} is an ensemble: it has no weights; use register_ensemble(card)")
        module = build_module(card.architecture)
        try:
            module.load_state_dict(state_dict, strict=True)
        except RuntimeError as error:
            raise InvalidInputError(
                f"state dict does not fit architecture {card.architecture}: {str(error)[:400]}"
            ) from None
        tensors = {}
        for key, value in state_dict.items():
            tensor = value.detach().cpu()
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[key] = tensor.contiguous()
        self.user_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{card.name}.", dir=self.user_dir))
        try:
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would outlive the rename
            save_file(tensors, str(staging / WEIGHTS_FILENAME))
            os.chmod(staging / WEIGHTS_FILENAME, 0o666 & ~current_umask())  # safetensors writes 0600
            card = ModelCard.from_dict(card.to_dict())
            card.weights_sha256 = sha256_file(staging / WEIGHTS_FILENAME)
            card.created = card.created or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
            card.save(staging / CARD_FILENAME)
            target = self.user_dir / card.name
            if target.exists():
                raise ConflictError(f"model {card.name!r} was created concurrently; choose another name")
            os.replace(staging, target)  # the folder appears complete or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return card
