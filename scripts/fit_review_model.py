"""Fit the default model's review score and measure the gate across input scales.

Every AIDPATH tile is detected under each condition (``none``, ``scale-0.25`` … as in
``scripts/bench_robustness.py``, product defaults: flip TTA, minimum area 1000 µm²); each object gets its review
features (:mod:`hubseg.review_score`) and whether it matches a true glomerulus (IoU > 0.5, as ``hubseg evaluate``).

Which model scores which tile:
- ``--cv-dir DIR`` with the fold models ``scripts/train_default.py`` saved (``fold-<k>`` folders whose cards list
  their held-out tiles and energy reference): each tile is scored by the fold model that never saw it, energies
  standardised by that fold model's own reference — **out-of-fold calibration objects** (the intended source);
- otherwise the shipped model on all tiles — **in-sample**: the tiles are its own training tiles. The script says
  so, and ``--write-card`` records it as the calibration source.

Prints one table: per condition, objects, true/false, AUROC of energy and of the review score (out of fold over
objects), and the share of true objects flagged uncertain by the energy gate and by the review gate.

    nice -n 15 .venv/bin/python scripts/fit_review_model.py --conditions none scale-0.25 scale-1.0 scale-3.0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    from scripts.common import (DATASET_PIXEL_SIZE_UM, DEFAULT_DATASET, REPO_ROOT, detect_array, make_shift,
                                match_objects, read_pairs)
except ImportError:  # run as `python scripts/fit_review_model.py`: this folder is sys.path[0], the repository root is not
    from common import (DATASET_PIXEL_SIZE_UM, DEFAULT_DATASET, REPO_ROOT, detect_array, make_shift, match_objects,
                        read_pairs)

DEFAULT_MODEL = "hubseg-pas-glomeruli-v1"


def fold_models(cv_dir: Path | None, registry) -> dict[str, tuple[object, dict]]:
    """tile stem → (fold model, its energy reference), from what ``scripts/train_default.py --cv-only`` saved in
    ``cv_dir``: the reports ``fold_<k>.json`` (held-out tiles, the fold model's energy reference on its own
    training tiles) and the fold models (``<cv_dir>/models/<family>-fold<k>-v1``)."""
    if cv_dir is None or not cv_dir.is_dir():
        return {}
    from hubseg.models.registry import ModelRegistry

    folds = ModelRegistry(cv_dir, shipped_dir=cv_dir / "none")
    out = {}
    for report_path in sorted(cv_dir.glob("fold_*.json")):
        report = json.loads(report_path.read_text())
        name = next((n for n in folds.names() if n.endswith(f"-fold{report['fold']}-v1")), None)
        if name is None or not isinstance(report.get("energy_reference"), dict) or not report.get("held_out"):
            print(f"{report_path.name}: no fold model or energy reference beside it; skipped", file=sys.stderr)
            continue
        model = folds.load(name, device="cpu")
        if report.get("weights_sha256") and model.card.weights_sha256 != report["weights_sha256"]:
            raise SystemExit(f"{report_path}: the fold model {name} is not the one this report scored (sha256 differs); "
                             "retrain the fold with train_default.py --cv-only --run-folds K")
        for tile in report["held_out"]:
            out[Path(str(tile)).stem] = (model, report["energy_reference"])
    return out


def objects_of(result, truth, true_labels, to_original, pixel_size_um):
    """(raw features, matched) per detected object of one tile."""
    import shapely

    from hubseg.review_score import raw_features

    matching, matched, _ = match_objects(result.objects, true_labels, to_original)
    h, w = truth.shape
    border = shapely.box(0, 0, w / to_original, h / to_original)
    rows = [raw_features(o, border, pixel_size_um) for o in result.objects]
    return rows, [k in matched for k in range(1, len(result.objects) + 1)], int(matching.true_ids.size), result.objects


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--cv-dir", default=str(REPO_ROOT / "out" / "cv"), help="train_default.py's fold models")
    parser.add_argument("--conditions", nargs="+", default=["none", "scale-0.25", "scale-1.0", "scale-3.0"])
    parser.add_argument("--fit-conditions", nargs="+", default=None,
                        help="conditions whose objects the review model is fitted on (default: all)")
    parser.add_argument("--limit", type=int, help="first N tiles only")
    parser.add_argument("--tta", default="flips")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    from hubseg.review_score import DEFAULT_FEATURES

    parser.add_argument("--features", nargs="+", default=list(DEFAULT_FEATURES), metavar="NAME",
                        help="review features, energy_z first (default: %(default)s = hubseg.review_score."
                             "DEFAULT_FEATURES; why: there and docs/models.md)")
    parser.add_argument("--write-card", action="store_true", help="store the review model in the model's card")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from hubseg.metrics import auroc, label_instances
    from hubseg.models.registry import ModelRegistry
    from hubseg.pipeline import DetectionOptions
    from hubseg.review_score import FEATURES, feature_matrix, fit_review_model, predict

    torch.set_num_threads(args.threads)
    registry = ModelRegistry()
    shipped = registry.load(args.model, device="cpu")
    folds = fold_models(Path(args.cv_dir), registry)
    source = ("out-of-fold: each tile scored by the CV fold model that never saw it" if folds else
              f"in-sample: the shipped model on its own {{n}} training tiles (no CV fold models in {args.cv_dir})")
    options = DetectionOptions(tta=args.tta, use_energy_gate=False)
    pairs = read_pairs(Path(args.dataset), args.limit, None)
    started = time.perf_counter()
    per_condition: dict[str, dict] = {}
    for condition in args.conditions:
        shift = make_shift(condition, args.seed)[1]
        rows, matched, refs, gated, tiles, n_true = [], [], [], [], [], 0
        for name, rgb, truth in pairs:
            model, reference = folds.get(Path(name).stem, (shipped, shipped.card.energy_gate["reference"]))
            shifted = shift(rgb, DATASET_PIXEL_SIZE_UM, name)
            min_pixels = max(1, int(round(options.min_area_um2 / DATASET_PIXEL_SIZE_UM**2)))
            true_labels = label_instances(truth, min_pixels=min_pixels)
            result = detect_array(shifted.rgb, shifted.pixel_size_um, model, options)
            r, m, t, objects = objects_of(result, truth, true_labels, shifted.to_original, shifted.pixel_size_um)
            # the card's energy gate at this model's own scale: z_cutoff through its reference
            z = float(shipped.card.energy_gate["z_cutoff"])
            cutoff = float(reference["median"]) + z * float(reference["scale"])
            gated.extend(o.mean_energy < cutoff for o in objects)
            rows += r
            matched += m
            refs += [reference] * len(r)
            tiles += [name] * len(r)
            n_true += t
        per_condition[condition] = {"rows": rows, "matched": matched, "refs": refs, "energy_uncertain": gated, "tiles": tiles,
                                    "n_true": n_true}
        print(f"{condition}: {len(rows)} objects, {sum(matched)} true, {n_true} true glomeruli "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # standardised energy per object (each model's own reference), then one fit over the chosen conditions
    def matrix(cond):
        data = per_condition[cond]
        return np.vstack([feature_matrix([row], ref) for row, ref in zip(data["rows"], data["refs"])]) if data["rows"] \
            else np.empty((0, len(FEATURES)))

    fit_conditions = args.fit_conditions or args.conditions
    all_rows, all_matched, all_tiles, all_true = [], [], [], 0
    for cond in fit_conditions:
        data = per_condition[cond]
        # rows with the energy already standardised: pass a unit reference to fit_review_model
        x = matrix(cond)
        all_rows += [dict(zip(("mean_energy", "mean_probability", "area_um2", "solidity", "circularity",
                                "border_distance_um"), (v[0], v[1], float(np.exp(v[2])), v[3], v[4], v[5]))) for v in x]
        all_matched += data["matched"]
        all_tiles += data["tiles"]
        all_true += data["n_true"]
    unit = {"median": 0.0, "scale": 1.0}
    review = fit_review_model(all_rows, all_matched, unit, n_true=all_true,
                              source=source.format(n=len(pairs)) + f"; conditions {', '.join(fit_conditions)}",
                              seed=args.seed, groups=all_tiles,  # folds by tile: one object under several conditions
                              features=args.features)
    if review is None:
        print("too few true/false objects to fit a review model", file=sys.stderr)
        return 1
    review["standardisation"]["energy_reference"] = shipped.card.energy_gate["reference"]
    from hubseg.review_score import out_of_fold_scores

    x_fit = feature_matrix(all_rows, unit, args.features)
    oof = out_of_fold_scores(x_fit, np.asarray(all_matched), folds=int(min(5, len(set(all_tiles)))), seed=args.seed,
                             groups=all_tiles)
    offsets = np.cumsum([0] + [len(per_condition[c]["rows"]) for c in fit_conditions])
    table = []
    for cond in args.conditions:
        data = per_condition[cond]
        m = np.asarray(data["matched"], bool)
        x = matrix(cond)
        if cond in fit_conditions:
            i = fit_conditions.index(cond)
            score = oof[offsets[i]:offsets[i + 1]]  # out of fold over objects
        else:
            score = predict(review, x[:, [FEATURES.index(f) for f in args.features]])
        energy_unc = np.asarray(data["energy_uncertain"], bool)
        review_unc = score < review["cutoff"]
        table.append({
            "condition": cond, "objects": int(m.size), "true": int(m.sum()), "false": int((~m).sum()),
            "auroc_energy": auroc(x[m, 0], x[~m, 0]), "auroc_review": auroc(score[m], score[~m]),
            "true_flagged_energy": float(energy_unc[m].mean()) if m.any() else None,
            "true_flagged_review": float(review_unc[m].mean()) if m.any() else None,
            "false_flagged_energy": float(energy_unc[~m].mean()) if (~m).any() else None,
            "false_flagged_review": float(review_unc[~m].mean()) if (~m).any() else None,
        })
    report = {"source": review["calibration_source"], "review_model": review, "table": table,
              "seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        f = lambda v: "—" if v is None else f"{v:.3f}"
        print(f"review model: {review['calibration_source']}")
        print(f"fit: n={review['n']} ({review['n_true']} true, {review['n_false']} false), AUROC out of fold "
              f"{review['auroc_oof']} vs energy alone {review['auroc_energy']}, cut-off {review['cutoff']}")
        print("| condition | objects | true/false | AUROC energy | AUROC review score | true flagged (energy gate) "
              "| true flagged (review gate) | false flagged (energy / review) |")
        print("|---|---|---|---|---|---|---|---|")
        for row in table:
            print(f"| {row['condition']} | {row['objects']} | {row['true']}/{row['false']} | {f(row['auroc_energy'])} | "
                  f"{f(row['auroc_review'])} | {f(row['true_flagged_energy'])} | {f(row['true_flagged_review'])} | "
                  f"{f(row['false_flagged_energy'])} / {f(row['false_flagged_review'])} |")
    if args.write_card:
        card = registry.card(args.model)
        card.review_model = review
        card.save(registry.path(args.model))
        print(f"wrote review_model into {registry.path(args.model)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
