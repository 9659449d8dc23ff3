"""The batch driver: resume check, dispatch through a backend, progress, Ctrl-C cleanup, summary files.

Backends (:class:`hubseg.batch.local.LocalPool`, :class:`hubseg.batch.ray_backend.RayBackend`, or
:class:`InProcess` for the server) expose ``results(items)`` yielding ``(index, row)`` as slides finish.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hubseg.batch.inputs import BatchItem
from hubseg.batch.summary import (
    counts, output_paths, read_record, record_path, remove_temp_files, resumable, write_summary,
)
from hubseg.batch.worker import BatchConfig, ModelSpec, SlideProcessor, slide_identity

RowCallback = Callable[[int, dict[str, Any]], None]


def model_spec(model: str | None, data_dir: str | None = None) -> ModelSpec:
    """Name, folder and weights sha256 of a model from its card (the weights are not loaded here)."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.paths import data_dir as resolve_data_dir

    registry = ModelRegistry(resolve_data_dir(data_dir))
    folder = registry.path(model or registry.active_name())
    card = registry.card(str(folder))
    return ModelSpec(name=card.name, folder=str(folder), weights_sha256=card.weights_sha256)


class InProcess:
    """Runs slides one after another in this process with an already loaded model (the server's worker)."""

    name = "in-process"

    def __init__(self, config: BatchConfig, model, should_cancel: Callable[[], bool] | None = None):
        self.processor = SlideProcessor(config, model=model)
        self.should_cancel = should_cancel

    def results(self, items: list[BatchItem]):
        from hubseg.errors import Cancelled

        for index, item in enumerate(items):
            if self.should_cancel and self.should_cancel():
                raise Cancelled("cancelled")
            yield index, self.processor.process(item, should_cancel=self.should_cancel)


def skipped_row(record: dict[str, Any]) -> dict[str, Any]:
    row = dict(record)
    row["status"] = "skipped"
    return row


def cleanup_unfinished(config: BatchConfig, items: list[BatchItem], started_wall: float) -> None:
    """Remove what unfinished slides left: temp files, and outputs this run wrote but no record vouches for."""
    for item in items:
        remove_temp_files(config.out_dir, item.stem)
        record = record_path(config.out_dir, item.stem)
        if record.is_file() and record.stat().st_mtime >= started_wall - 1:
            continue  # the worker finished it after all (records are written last)
        for path in output_paths(config.out_dir, item.stem):
            if path.is_file() and path.stat().st_mtime >= started_wall - 1:
                path.unlink(missing_ok=True)


def _plan(items: list[BatchItem], config: BatchConfig, out_dir: Path, resume: bool,
          on_row: RowCallback | None) -> tuple[list[dict[str, Any] | None], list[int]]:
    """Rows of the slides ``resume`` skips (reported through ``on_row``) and the indices left to run."""
    rows: list[dict[str, Any] | None] = [None] * len(items)
    todo: list[int] = []
    for index, item in enumerate(items):
        remove_temp_files(out_dir, item.stem)  # leftovers of a killed earlier run
        record = read_record(out_dir, item.stem) if resume else None
        identity = None
        if record is not None:
            try:
                identity = slide_identity(item.path)
            except OSError:
                identity = None
        if resume and resumable(record, item, config, identity):
            rows[index] = skipped_row(record)
            if on_row:
                on_row(index, rows[index])
        else:
            todo.append(index)
    return rows, todo


def _document_meta(config: BatchConfig, backend, out_dir: Path, meta: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "model": {"name": config.model.name, "weights_sha256": config.model.weights_sha256},
        "options": config.options, "backend": getattr(backend, "name", type(backend).__name__),
        "workers": getattr(backend, "workers", 1), "out_dir": str(out_dir),
        "started": datetime.now(timezone.utc).replace(microsecond=0).isoformat(), **(meta or {}),
    }


def run_batch(
    items: list[BatchItem],
    config: BatchConfig,
    backend,
    *,
    resume: bool = False,
    progress: bool = True,
    on_row: RowCallback | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``items`` through ``backend``; returns the summary document (also written as summary.csv/json).

    With ``resume``, slides whose record matches the model sha256, options and slide identity are
    ``skipped`` (failed ones are tried again). Interrupts (Ctrl-C) stop the backend, remove partial
    outputs of unfinished slides, write the summary of what finished, and re-raise.
    """
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started_wall, started = time.time(), time.perf_counter()
    rows, todo = _plan(items, config, out_dir, resume, on_row)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="slides", unit="slide", file=sys.stderr,
                   dynamic_ncols=True)
    document_meta = _document_meta(config, backend, out_dir, meta)
    interrupted = False
    results = backend.results([items[i] for i in todo])
    try:
        for position, row in results:
            index = todo[position]
            rows[index] = row
            if on_row:
                on_row(index, row)
            if bar is not None:
                done = counts([r for r in rows if r])
                bar.set_postfix_str(f"ok {done['ok']} failed {done['failed']} skipped {done['skipped']}", refresh=False)
                bar.update(1)
        for item in items:  # every worker has stopped: temp files now can only be from killed attempts
            remove_temp_files(out_dir, item.stem)
    except BaseException:
        interrupted = True
        results.close()  # stops the workers before the cleanup below
        cleanup_unfinished(config, [items[i] for i in todo if rows[i] is None], started_wall)
        raise
    finally:
        if bar is not None:
            bar.close()
        finished = [r for r in rows if r is not None]
        document_meta.update(
            finished=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            seconds=round(time.perf_counter() - started, 3), interrupted=interrupted,
            unfinished=[items[i].path for i, r in enumerate(rows) if r is None],
        )
        write_summary(out_dir, finished, document_meta)
    return {**document_meta, "counts": counts(finished), "slides": finished}


__all__ = ["run_batch", "model_spec", "InProcess"]
