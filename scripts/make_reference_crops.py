#!/usr/bin/env python
"""Store reference glomeruli with a model card: crops of its training data's most certain true glomeruli.

    .venv/bin/python scripts/make_reference_crops.py [--model hubseg-pas-glomeruli-v1] [--count 6]

Default: the shipped model on the AIDPATH tiles it was trained on (CC BY 4.0, credited in its card); the crops
go to ``hubseg/data/models/<name>/references/`` and the card's ``references`` field
(:mod:`hubseg.training.references`). Other models: ``--data DIR --pixel-size UM`` (an images/ + masks/ folder)
and ``--data-dir`` for a user model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

try:
    from scripts import common
except ImportError:  # run as `python scripts/make_reference_crops.py`: this folder is sys.path[0], the repository root is not
    import common

REPO = common.REPO_ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hubseg-pas-glomeruli-v1")
    parser.add_argument("--data-dir", help="hubseg data dir holding a user --model")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "pas-glomeruli-aidpath"))
    parser.add_argument("--pixel-size", type=float, default=0.4942, help="µm/px of --data")
    parser.add_argument("--count", type=int, default=6)
    args = parser.parse_args()
    import torch

    from hubseg.models import ModelRegistry
    from hubseg.training.references import select_references, write_references
    from hubseg.training.sources import ImageFolderSource

    torch.set_num_threads(1)
    registry = ModelRegistry(args.data_dir)
    model = registry.load(args.model, device="cpu")
    images = ImageFolderSource(args.data, args.pixel_size).load(model.card.pixel_size_um)
    chosen = select_references(model, images, count=args.count)
    card = write_references(registry.path(args.model), chosen,
                            source=f"training data of {model.card.name} ({Path(args.data).name})")
    total = sum(len(data) for data, _ in chosen)
    print(f"{len(card.references)} reference crops ({total / 1024:.1f} KB) written beside {registry.path(args.model)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
