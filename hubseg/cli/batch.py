"""``hubseg batch``: detect glomeruli in many slides (local process pool or Ray), resumable, with a summary CSV."""

from __future__ import annotations

import sys

from hubseg.cli.detect import add_model_arguments
from hubseg.errors import InvalidInputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="detect glomeruli in many slides (process pool or Ray cluster) → one GeoJSON each + summary.csv",
        description="Detect glomeruli in every slide (paths, globs, folders, a CSV manifest or a QuPath project's "
        "images) and write OUT_DIR/<slide>.geojson (the same GeoJSON as `hubseg detect`), summary.csv and "
        "summary.json. A slide that fails is a 'failed' row and never stops the batch; --resume skips slides "
        "already done with the same model and options.",
    )
    parser.add_argument("slides", nargs="*", metavar="SLIDES", help="slide files, globs ('**' recursive) or folders")
    parser.add_argument("--manifest", metavar="FILE.csv", help="CSV with rows path[,pixel_size_um][,region X,Y,W,H]")
    parser.add_argument("--project", metavar="PROJECT.qpproj", help="the images of a QuPath project (read only; needs paquo)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="folder for the GeoJSON files and summaries")
    parser.add_argument("--pixel-size", type=float, metavar="UM", help="level-0 µm/px for every slide (overrides files and manifest)")
    add_model_arguments(parser)
    parser.add_argument("--workers", type=int, metavar="N", help="parallel workers (default: one per GPU, else 1)")
    parser.add_argument("--ray", metavar="auto|local|ADDRESS",
                        help="run on Ray: local = start Ray here, auto = the running cluster, or a cluster address "
                        "(host:port or ray://host:10001); absent = a local process pool, no Ray needed")
    parser.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per Ray worker (default: 1 when the cluster has GPUs, else 0)")
    parser.add_argument("--cpus-per-worker", type=float, metavar="C", help="CPU threads per worker (default: Ray 1; pool: cores / workers)")
    parser.add_argument("--max-retries", type=int, default=2, metavar="N", help="retries of a slide whose worker died (default: 2)")
    parser.add_argument("--resume", action="store_true", help="skip slides whose GeoJSON exists from the same model sha256, options and file")
    parser.add_argument("--overlay", action="store_true", help="also write OUT_DIR/<slide>.png overlays")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def local_devices(device: str) -> list[str]:
    """Devices for the pool's workers: every CUDA GPU for auto/cuda when there are any, else ``device``."""
    if device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if device == "auto":
            return ["auto"]
    return [device]


def make_backend(args, config):
    """The LocalPool or RayBackend the flags ask for, and whether this process started Ray."""
    if args.workers is not None and args.workers < 1:
        raise InvalidInputError(f"--workers must be >= 1, got {args.workers}")
    if args.max_retries < 0:
        raise InvalidInputError(f"--max-retries must be >= 0, got {args.max_retries}")
    if args.ray is None:
        from hubseg.batch.local import LocalPool

        if args.gpus_per_worker is not None:
            raise InvalidInputError("--gpus-per-worker needs --ray; the local pool gives each worker one device")
        devices = local_devices(args.device)
        workers = args.workers or (len(devices) if devices[0].startswith("cuda") else 1)
        threads = int(args.cpus_per_worker) if args.cpus_per_worker else None
        return LocalPool(config, workers=workers, devices=devices, torch_threads=threads, max_retries=args.max_retries), False
    from hubseg.batch import ray_backend

    started = ray_backend.connect(args.ray)
    gpus = args.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if args.device in ("auto", "cuda") and ray_backend.cluster_gpus() > 0 else 0.0
    if gpus < 0:
        raise InvalidInputError(f"--gpus-per-worker must be >= 0, got {gpus}")
    workers = args.workers or (max(1, int(ray_backend.cluster_gpus() // gpus)) if gpus > 0 else 1)
    backend = ray_backend.RayBackend(config, workers=workers, gpus_per_worker=gpus, cpus_per_worker=args.cpus_per_worker or 1,
                                     device=args.device, max_retries=args.max_retries)
    return backend, started


def run(args) -> int:
    from hubseg.batch.inputs import collect_inputs
    from hubseg.batch.runner import model_spec, run_batch
    from hubseg.batch.worker import BatchConfig, options_dict
    from hubseg.cli.detect import detection_options

    from hubseg.cli.checks import check_output_folder, pixel_size_option

    pixel_size = pixel_size_option(args.pixel_size, "--pixel-size", "batch")
    options = detection_options(args)
    options.validate()
    items = collect_inputs(args.slides, args.manifest, args.project, pixel_size_um=pixel_size)
    out_dir = check_output_folder(args.output_dir, "-o/--output-dir", create=True).resolve()
    config = BatchConfig(out_dir=str(out_dir), model=model_spec(args.model, args.data_dir), options=options_dict(options),
                         overlay=bool(args.overlay))
    backend, started_ray = make_backend(args, config)
    try:
        summary = run_batch(items, config, backend, resume=args.resume, progress=not args.quiet)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    n = summary["counts"]
    print(f"{len(items)} slides: {n['ok']} ok, {n['failed']} failed, {n['skipped']} skipped in {summary['seconds']:.1f} s "
          f"({backend.name}, {backend.workers} worker(s)); wrote {out_dir / 'summary.csv'}")
    if n["failed"]:
        print(f"hubseg batch: error: {n['failed']} of {len(items)} slides failed; reasons in the 'error' column of "
              f"{out_dir / 'summary.csv'}", file=sys.stderr)
        return 2
    return 0
