"""Which forgetting protection for a fine-tune on few corrections?

The default model is fine-tuned on a few AIDPATH tiles made into a "new lab" (HED stain shift + JPEG), with
each protection in turn — none, encoder LR × 0.1, frozen BatchNorm statistics, weight EMA — and scored on
other tiles of the new lab (adaptation) and on the same tiles unshifted (forgetting; these tiles were in the
default model's training set, so the base figure is optimistic and the *drop* is what counts). Same seed, same
tiles, same epochs for every configuration; ``--seeds`` repeats with other seeds (mean ± spread).

    nice -n 15 .venv/bin/python scripts/bench_finetune_recipe.py --train-tiles 3 --test-tiles 6 --epochs 8
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

try:
    from scripts.common import DATASET_PIXEL_SIZE_UM, DEFAULT_DATASET
except ImportError:  # run as `python scripts/bench_finetune_recipe.py`: this folder is sys.path[0], the repository root is not
    from common import DATASET_PIXEL_SIZE_UM, DEFAULT_DATASET

CONFIGS = {
    "none": {},
    "encoder-lr-0.1": {"encoder_lr_factor": 0.1},
    "frozen-bn": {"freeze_bn": True},
    "ema-0.9": {"ema_decay": 0.9},
}


def new_lab(rgb: np.ndarray, seed: int) -> np.ndarray:
    """A different lab's look: HED stain shift (strength 0.3) and JPEG quality 40."""
    from hubseg.stain import hed_shift

    shifted = hed_shift(rgb, 0.3, rng=seed)
    buffer = io.BytesIO()
    Image.fromarray(shifted).save(buffer, format="JPEG", quality=40)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def write_folder(root: Path, names, dataset: Path, shift: bool, seed: int) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k, name in enumerate(names):
        rgb = np.asarray(Image.open(dataset / "images" / name).convert("RGB"))
        Image.fromarray(new_lab(rgb, seed + k) if shift else rgb).save(root / "images" / f"{Path(name).stem}.png")
        mask = next((dataset / "masks").glob(Path(name).stem + ".*"))
        Image.open(mask).save(root / "masks" / f"{Path(name).stem}.png")
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--model", default="hubseg-pas-glomeruli-v1")
    parser.add_argument("--train-tiles", type=int, default=3)
    parser.add_argument("--test-tiles", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from hubseg.models.card import ModelCard
    from hubseg.models.loaded import LoadedModel
    from hubseg.models.registry import ModelRegistry
    from hubseg.pipeline import DetectionOptions
    from hubseg.training.evaluate import evaluate_images
    from hubseg.training.sources import ImageFolderSource
    from hubseg.training.trainer import TrainConfig, fit

    torch.set_num_threads(args.threads)
    dataset = Path(args.dataset)
    names = sorted(p.name for p in (dataset / "images").iterdir())
    train_names = names[: args.train_tiles]
    test_names = names[args.train_tiles: args.train_tiles + args.test_tiles]
    registry = ModelRegistry()
    options = DetectionOptions(use_energy_gate=False, tissue_detection=False)
    rows: dict[str, list[dict]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in args.seeds:
            folders = {
                "train": write_folder(tmp / f"train-{seed}", train_names, dataset, True, 100 * seed),
                "new": write_folder(tmp / f"new-{seed}", test_names, dataset, True, 100 * seed + 50),
                "old": write_folder(tmp / f"old-{seed}", test_names, dataset, False, 0),
            }
            base = registry.load(args.model, device="cpu")
            images = {k: ImageFolderSource(v, DATASET_PIXEL_SIZE_UM).load(base.card.pixel_size_um) for k, v in folders.items()}

            def score(model) -> dict:
                return {side: evaluate_images(model, images[side], options).summary() for side in ("new", "old")}

            rows.setdefault("base", []).append({**score(base), "seconds": 0.0})
            for name in args.configs:
                model = registry.load(args.model, device="cpu")
                card = ModelCard.from_dict(model.card.to_dict())
                config = TrainConfig(base_model=args.model, epochs=args.epochs, lr=args.lr, val_fraction=0.0, seed=seed,
                                     device="cpu", num_threads=args.threads, **CONFIGS[name])
                t0 = time.process_time()
                result = fit(config, images["train"], [], model.module.train(), card)
                seconds = time.process_time() - t0
                model.module.load_state_dict(result.state_dict)
                tuned = LoadedModel(card, model.module.eval(), torch.device("cpu"))
                rows.setdefault(name, []).append({**score(tuned), "seconds": round(seconds, 1)})
                print(f"seed {seed} {name}: {rows[name][-1]} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    def agg(values):
        values = np.asarray(values, float)
        return {"mean": round(float(values.mean()), 4), "spread": round(float(values.max() - values.min()), 4)}

    table = []
    for name, runs in rows.items():
        table.append({"config": name, **{f"{side}_{metric}": agg([r[side][metric] for r in runs])
                                         for side in ("new", "old") for metric in ("f1", "dice")},
                      "cpu_seconds": agg([r["seconds"] for r in runs])})
    report = {"train_tiles": train_names, "test_tiles": test_names, "epochs": args.epochs, "lr": args.lr,
              "seeds": args.seeds, "table": table, "runs": rows}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("| fine-tune | new lab F1 | new lab Dice | original F1 | original Dice | CPU s |")
        print("|---|---|---|---|---|---|")
        for row in table:
            cell = lambda k: f"{row[k]['mean']:.3f}" + (f" ± {row[k]['spread'] / 2:.3f}" if len(args.seeds) > 1 else "")
            print(f"| {row['config']} | {cell('new_f1')} | {cell('new_dice')} | {cell('old_f1')} | {cell('old_dice')} | "
                  f"{row['cpu_seconds']['mean']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
