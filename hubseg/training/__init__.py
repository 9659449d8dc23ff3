"""Training and fine-tuning (see docs/architecture.md and docs/models.md)."""

from hubseg.training.trainer import TrainConfig, train

__all__ = ["TrainConfig", "train"]
