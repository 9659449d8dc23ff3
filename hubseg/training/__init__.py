"""Training and fine-tuning (see docs/architecture.md)."""
