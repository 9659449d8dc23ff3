#!/usr/bin/env python
"""Benchmark ``hubseg batch`` (not a test): slides/hour for 1 vs 2 workers (local pool and Ray), the driver's
peak RSS, and the per-slide overhead versus ``hubseg.pipeline.detect`` called in one process.

    .venv/bin/python scripts/bench_batch.py [--slides 4] [--size 1536] [--repeats 2] [--workers 1 2]
                                            [--backends local ray] [--device cpu|cuda] [--tta none] [--json]

Slides are generated pyramidal OME-TIFFs (``bench_inference.make_slide``: PAS-like tissue, 0.5 µm/px); the
model is the tiny random-init U-Net at 1 µm/px, tile 64 (``--size 1536`` → about 200 tiles per slide), or
``--model NAME --data-dir DIR``. Measured per configuration, ``--repeats`` times (median and min–max):

- ``baseline``: one process loads the model once, then per slide ``open_slide`` + ``detect`` + GeoJSON write
  (torch threads = ``--threads``, the same as each batch worker gets)
- ``local`` / ``ray`` × workers: ``hubseg batch`` in a fresh driver process (Ray: ``--ray local``, its own
  instance). ``slides/h`` from the batch's wall time (worker start and model load included);
  ``per-slide s`` = median of the workers' own per-slide seconds (detect + GeoJSON + tissue area + identity
  hash); ``overhead`` = per-slide s vs the baseline's; ``end-to-end`` = wall × workers / slides vs baseline
  (start-up amortised over this few slides; it shrinks with more slides); ``driver MB`` = the driver's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DRIVER = r"""
import json, resource, sys, time
from hubseg.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
print("BENCH " + json.dumps({"code": code, "wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def baseline(args, slides: list[Path]) -> list[float]:
    """Per-slide seconds of open_slide + detect + GeoJSON write with the model loaded once (this process)."""
    import torch

    from hubseg.models.registry import ModelRegistry
    from hubseg.pipeline import DetectionOptions, detect
    from hubseg.qupath_geojson import write_feature_collection
    from hubseg.slide import open_slide

    torch.set_num_threads(args.threads)
    model = ModelRegistry(args.data_dir).load(args.model, device=args.device)
    options = DetectionOptions(tta=args.tta)
    seconds, tiles = [], []
    with tempfile.TemporaryDirectory() as out:
        for path in slides:
            t0 = time.perf_counter()
            with open_slide(path) as slide:
                result = detect(slide, model, options=options)
                write_feature_collection(Path(out) / f"{path.stem}.geojson", result.to_feature_collection())
            seconds.append(time.perf_counter() - t0)
            tiles.append(result.tiles_total - result.tiles_skipped)
    args.tiles_per_slide = statistics.median(tiles)
    return seconds


def batch_run(args, slides: list[Path], backend: str, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-c", DRIVER, "batch", *map(str, slides), "-o", out, "--model", args.model,
                   "--data-dir", str(args.data_dir), "--device", args.device, "--tta", args.tta, "--workers", str(workers),
                   "--cpus-per-worker", str(args.threads), "--quiet"]
        if backend == "ray":
            command += ["--ray", "local"]
            if args.device == "cuda":
                command += ["--gpus-per-worker", str(min(1.0, args.gpus / workers))]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
        line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"{backend} x{workers} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        driver = json.loads(line[6:])
        summary = json.loads((Path(out) / "summary.json").read_text(encoding="utf-8"))
    ok = [row for row in summary["slides"] if row["status"] == "ok"]
    if len(ok) != len(slides):
        raise RuntimeError(f"{backend} x{workers}: {len(ok)} of {len(slides)} slides ok: {summary['slides']}")
    return {"batch_seconds": summary["seconds"], "driver_wall": driver["wall"], "driver_rss_mb": driver["rss_mb"],
            "per_slide": statistics.median(row["seconds"] for row in ok)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slides", type=int, default=4)
    parser.add_argument("--size", type=int, default=1536, help="slide width = height in level-0 px (0.5 µm/px)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (and for the baseline)")
    parser.add_argument("--tta", default="none", choices=["none", "flips", "all"])
    parser.add_argument("--model", default="tiny-bench-v1")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    try:
        from scripts.bench_inference import make_slide
    except ImportError:  # run as `python scripts/bench_batch.py`: this folder is sys.path[0]
        from bench_inference import make_slide

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data_dir is None:
            from hubseg.models.testing import make_tiny_model

            args.data_dir = tmp / "data"
            make_tiny_model(args.data_dir, name=args.model, pixel_size_um=1.0, tile_size=64)
        args.gpus = 0
        if args.device == "cuda":
            import torch

            args.gpus = torch.cuda.device_count()
        slides = [make_slide(tmp / f"slide{i}.ome.tif", args.size, args.size) for i in range(args.slides)]
        report = {"slides": args.slides, "size": args.size, "device": args.device, "tta": args.tta, "threads": args.threads,
                  "repeats": args.repeats, "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}
        base = [baseline(args, slides) for _ in range(args.repeats)]
        per_slide_base = statistics.median(s for run in base for s in run)
        report["tiles_per_slide"] = args.tiles_per_slide
        report["baseline"] = {"per_slide": spread([s for run in base for s in run]),
                              "slides_per_hour": spread([3600 * len(run) / sum(run) for run in base])}
        rows = []
        for backend in args.backends:
            for workers in args.workers:
                runs = [batch_run(args, slides, backend, workers) for _ in range(args.repeats)]
                rows.append({
                    "backend": backend, "workers": workers,
                    "slides_per_hour": spread([3600 * args.slides / r["batch_seconds"] for r in runs]),
                    "per_slide": spread([r["per_slide"] for r in runs]),
                    "overhead_pct": spread([100 * (r["per_slide"] / per_slide_base - 1) for r in runs]),
                    "end_to_end_pct": spread([100 * (r["batch_seconds"] * workers / args.slides / per_slide_base - 1) for r in runs]),
                    "driver_rss_mb": spread([r["driver_rss_mb"] for r in runs]),
                })
        report["batch"] = rows
        report["load_avg_1min_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1) if args.json else format_table(report))
    return 0


def _fmt(s: dict, digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def format_table(report: dict) -> str:
    base = report["baseline"]
    lines = [
        f"{report['slides']} slides of {report['size']}² px (~{report['tiles_per_slide']:.0f} tiles each), device {report['device']}, "
        f"tta {report['tta']}, {report['threads']} torch thread(s) per worker, {report['repeats']} repeats, "
        f"{report['cpu_count']} cores, load {report['load_avg_1min']:.1f}→{report['load_avg_1min_end']:.1f}; median (min–max)",
        "",
        "| run | slides/h | per-slide s | overhead vs detect | end-to-end vs detect | driver peak RSS MB |",
        "|---|---|---|---|---|---|",
        f"| detect in one process | {_fmt(base['slides_per_hour'], 0)} | {_fmt(base['per_slide'], 2)} | — | — | — |",
    ]
    for row in report["batch"]:
        lines.append(
            f"| {row['backend']} × {row['workers']} | {_fmt(row['slides_per_hour'], 0)} | {_fmt(row['per_slide'], 2)} | "
            f"{_fmt(row['overhead_pct'])} % | {_fmt(row['end_to_end_pct'])} % | {_fmt(row['driver_rss_mb'], 0)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
