"""Model cards, registry, architectures and checkpoint import (see docs/architecture.md)."""
