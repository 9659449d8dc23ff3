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
    add_adapt_options(parser)
    parser.set_defaults(func=run)


def add_adapt_options(parser) -> None:
    from hubseg.batch.adapt import DEFAULT_ADAPT_SLIDES
    from hubseg.cli.adapt import add_teacher_cap_options
    from hubseg.training.selftrain import DEFAULT_ITERATIONS

    group = parser.add_argument_group(
        "adapt first", "--adapt self-trains the model on a sample of the cohort (hubseg adapt, no labels) and detects "
        "every slide with the adapted model; a model its safety check flags is not used (the batch keeps --model)")
    group.add_argument("--adapt", action="store_true", help="adapt to the cohort first, then detect")
    group.add_argument("--adapt-slides", type=int, default=DEFAULT_ADAPT_SLIDES, metavar="N",
                       help=f"adapt on at most N slides spread over the cohort (default {DEFAULT_ADAPT_SLIDES})")
    group.add_argument("--cohort", metavar="NAME", help="the cohort's name in the adapted model's card (default: the "
                       "output folder's name)")
    group.add_argument("--adapt-iterations", type=int, default=DEFAULT_ITERATIONS, metavar="N",
                       help=f"training iterations of the adaptation (default {DEFAULT_ITERATIONS})")
    group.add_argument("--adapt-epochs", type=int, metavar="N", help="fixed epochs instead of the iteration budget")
    group.add_argument("--adapt-lr", type=float, default=5e-4, metavar="LR", help="peak learning rate (default 5e-4)")
    group.add_argument("--adapt-freeze-bn", action="store_true", help="keep the base model's BatchNorm statistics")
    group.add_argument("--seed", type=int, default=0, help="seed of the adaptation's training")
    group.add_argument("--threads", type=int, help="CPU threads for torch while adapting")
    add_teacher_cap_options(group)


def adapt_first(args, items, out_dir) -> tuple[str | None, dict]:
    """``--adapt``: self-train on a sample of ``items``; returns (model for detection, adaptation summary)."""
    from hubseg.batch.adapt import adapt_on_cohort
    from hubseg.cli.adapt import progress_bars, teacher_cap
    from hubseg.models.registry import ModelRegistry
    from hubseg.training.selftrain import SelfTrainConfig
    from hubseg.training.trainer import TrainConfig

    config = SelfTrainConfig(iterations=args.adapt_iterations, epochs=args.adapt_epochs, cap=teacher_cap(args),
                             train=TrainConfig(lr=args.adapt_lr, random_tiles=1.0, seed=args.seed, device=args.device,
                                               num_threads=args.threads, freeze_bn=args.adapt_freeze_bn))
    registry = ModelRegistry(args.data_dir)
    progress, close = progress_bars() if not args.quiet else (None, lambda: None)
    try:
        card, use_it, summary = adapt_on_cohort(items, registry, args.model, args.cohort or out_dir.name, config,
                                                args.adapt_slides, progress=progress)
    finally:
        close()
    safety = summary.get("safety") or {}
    print(f"adapted {card.name} on {summary['slides']} of {len(items)} slides ({summary['teacher_tiles']} teacher "
          f"tiles): {summary['pseudo_positive_objects']} pseudo-positive, {summary['uncertain_objects']} uncertain "
          f"objects; safety check {safety.get('verdict', 'unchecked')}")
    if not use_it:
        print(f"hubseg batch: warning: {card.name} was flagged by its safety check "
              f"({'; '.join(safety.get('reasons') or [])}); detecting with {args.model or 'the active model'} instead",
              file=sys.stderr)
        return args.model, summary
    return card.name, summary


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
    model, meta = args.model, {}
    if args.adapt:
        model, adaptation = adapt_first(args, items, out_dir)
        meta["adaptation"] = adaptation
    config = BatchConfig(out_dir=str(out_dir), model=model_spec(model, args.data_dir), options=options_dict(options),
                         overlay=bool(args.overlay))
    backend, started_ray = make_backend(args, config)
    try:
        summary = run_batch(items, config, backend, resume=args.resume, progress=not args.quiet, meta=meta)
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
