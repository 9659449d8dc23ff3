"""Model cards, registry, architectures and checkpoint import (see docs/architecture.md)."""

from hubseg.models.card import ModelCard
from hubseg.models.devices import resolve_device
from hubseg.models.loaded import LoadedModel

__all__ = ["ModelCard", "LoadedModel", "resolve_device", "ModelRegistry"]


def __getattr__(name):  # lazy: the registry pulls in smp/timm, which is slow to import
    if name == "ModelRegistry":
        from hubseg.models.registry import ModelRegistry

        return ModelRegistry
    raise AttributeError(name)
