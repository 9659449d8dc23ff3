"""Batch jobs (``POST /v1/batches``): many slides through ``hubseg.batch`` in the server's worker thread.

A batch job runs on the worker's device with the worker's cached model, one slide after another (the same
worker/device rules as detections), through the same code as ``hubseg batch`` (:mod:`hubseg.batch`).
Its files live in ``<data_dir>/batches/<job_id>/``: ``items.json`` (the slides, in order), one
``<stem>.geojson`` per slide, the per-slide records and ``summary.json``; the API reads them back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from hubseg.errors import InvalidInputError

ITEMS_FILE = "items.json"


def batch_dir(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir) / "batches" / job_id


def request_items(request: dict[str, Any], slides_roots) -> list:
    """The validated request's slides as :class:`hubseg.batch.BatchItem` (a project is listed here, in the job)."""
    from hubseg.batch.inputs import BatchItem, project_images, unique_stems

    from hubseg_server.errors import ApiError
    from hubseg_server.security import resolve_slide_path

    if "project_path" in request:
        rows = []
        for path, pixel_size, _ in project_images(request["project_path"]):
            try:  # the same path rule as every image the server reads
                resolve_slide_path(str(path), slides_roots, field="project image")
            except ApiError as error:
                raise InvalidInputError(f"project image {path}: {error.message}") from None
            rows.append((str(path), pixel_size, None))
    else:
        rows = [(image["path"], image.get("pixel_size_um"), tuple(image["region"]) if image.get("region") else None)
                for image in request["images"]]
    stems = unique_stems([Path(path) for path, _, _ in rows])
    return [BatchItem(path=path, stem=stem, pixel_size_um=size, region=reg) for (path, size, reg), stem in zip(rows, stems)]


def read_items(folder: Path) -> list[dict[str, Any]] | None:
    try:
        return json.loads((folder / ITEMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def adapt_first(request: dict[str, Any], items: list, model, registry, device, job_id: str, progress: Callable,
                should_cancel: Callable[[], bool], on_summary: Callable[[dict], None] | None = None):
    """``"adapt"``: self-train on a sample of the cohort (:mod:`hubseg.batch.adapt`); returns the model to detect
    with (the adapted one, or ``model`` when the safety check flagged it) and the adaptation summary."""
    from dataclasses import replace

    from hubseg.batch.adapt import DEFAULT_ADAPT_SLIDES, adapt_on_cohort
    from hubseg.training.selftrain import SelfTrainConfig

    from hubseg_server.engine import teacher_cap

    adapt = request["adapt"]
    config = SelfTrainConfig(cap=teacher_cap(adapt), epochs=adapt.get("epochs"))
    config.train = replace(config.train, device=str(device))
    card, use_it, summary = adapt_on_cohort(items, registry, model.card.name, adapt.get("cohort") or f"batch {job_id}",
                                            config, adapt.get("slides", DEFAULT_ADAPT_SLIDES), progress=progress,
                                            should_cancel=should_cancel)
    if on_summary is not None:
        on_summary(summary)
    return (registry.load(card.name, device=device) if use_it else model), summary


def run_batch_job(job: dict[str, Any], model, registry, data_dir: Path, slides_roots, progress: Callable,
                  should_cancel: Callable[[], bool], max_tiles: int | None = None, device=None,
                  on_summary: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Run one batch job; returns the summary document (counts + per-slide rows). A slide needing more than
    ``max_tiles`` tiles (``hubseg serve --max-tiles``) becomes a ``failed`` row, like any other bad slide. With
    ``"adapt"`` the model is first adapted to a sample of the slides (see :func:`adapt_first`)."""
    import dataclasses

    from hubseg.batch.runner import InProcess, run_batch
    from hubseg.batch.worker import BatchConfig, ModelSpec, options_dict
    from hubseg.paths import atomic_write_text

    from hubseg_server.engine import detection_options

    request = json.loads(job["request"])
    folder = batch_dir(data_dir, job["id"])
    folder.mkdir(parents=True, exist_ok=True)
    items = request_items(request, slides_roots)
    atomic_write_text(folder / ITEMS_FILE, json.dumps([dataclasses.asdict(item) for item in items]))
    meta: dict[str, Any] = {"job_id": job["id"]}
    if request.get("adapt") is not None:
        model, meta["adaptation"] = adapt_first(request, items, model, registry, device or model.device, job["id"],
                                                progress, should_cancel, on_summary)
    spec = ModelSpec(name=model.card.name, folder=str(registry.path(model.card.name)), weights_sha256=model.card.weights_sha256)
    config = BatchConfig(out_dir=str(folder), model=spec, options=options_dict(detection_options({**(request.get("options") or {}), "max_tiles": max_tiles})))
    finished = [0]

    def on_row(index: int, row: dict[str, Any]) -> None:
        finished[0] += 1
        progress(finished[0], len(items), f"{Path(row['path']).name}: {row['status']}")

    progress(0, len(items), f"{len(items)} slides")
    return run_batch(items, config, InProcess(config, model, should_cancel), progress=False, on_row=on_row, meta=meta)
