"""Housekeeping of the data directory and the process: leftovers of kills, result retention, memory.

- At start-up: temporary files of interrupted atomic writes (``.*.tmp``) and files no database row points
  at (label sets / uploads / results whose row was never committed because the process was killed) are
  deleted. Only files older than ``STALE_AFTER_S`` are touched, so a second process writing into the same
  folder is never disturbed.
- Retention: results of jobs finished more than ``keep_results_days`` ago are deleted (the job row stays,
  its ``result_available`` turns false); checked at start-up and every ``RETENTION_INTERVAL_S``.
- Memory: after large requests and after every job, freed heap is returned to the OS (glibc ``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("hubseg_server")

STALE_AFTER_S = 600.0
RETENTION_INTERVAL_S = 3600.0


@lru_cache(maxsize=1)
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


def release_memory() -> None:
    """Give freed heap pages back to the OS where the C library allows it (a no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _is_stale(path: Path, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def sweep_leftovers(store, now: float | None = None) -> list[Path]:
    """Delete stale ``.tmp`` files and unreferenced files under results/, labels/, uploads/ (and stale
    ``.tmp`` files under models/, writability probes of ``hubseg.paths.data_dir``); returns what was deleted."""
    now = time.time() if now is None else now
    referenced = store.referenced_files()
    removed = []
    folders = {"results": store.results_dir, "labels": store.labels_dir, "uploads": store.uploads_dir}
    for key, folder in folders.items():
        for path in folder.iterdir():
            if not path.is_file() or not _is_stale(path, now):
                continue
            if path.name.endswith(".tmp") or path.name not in referenced[key]:
                removed.append(path)
    removed += [p for p in store.data_dir.glob(".hubseg-probe-*") if p.is_file() and _is_stale(p, now)]
    models = store.data_dir / "models"
    if models.is_dir():
        removed += [p for p in models.rglob(".*.tmp") if p.is_file() and _is_stale(p, now)]
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        log.info("housekeeping: removed %d leftover file(s) of interrupted writes", len(removed))
    return removed


def apply_retention(store, keep_days: float) -> int:
    """Delete results of jobs finished more than ``keep_days`` ago (0 or less: keep forever); returns how many."""
    if not keep_days or keep_days <= 0:
        return 0
    cutoff = datetime.now(timezone.utc) - timedelta(days=float(keep_days))
    cutoff_iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    old = store.results_finished_before(cutoff_iso)
    for job_id in old:
        store.delete_result(job_id)
    if old:
        log.info("housekeeping: deleted %d result(s) older than %g days (--keep-results-days)", len(old), keep_days)
    return len(old)


class Housekeeper:
    """Runs :func:`sweep_leftovers` and :func:`apply_retention` at start and retention every hour."""

    def __init__(self, store, keep_results_days: float):
        self.store = store
        self.keep_results_days = keep_results_days
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hubseg-housekeeping", daemon=True)

    def run_once(self) -> None:
        try:
            sweep_leftovers(self.store)
            apply_retention(self.store, self.keep_results_days)
        except Exception:  # housekeeping must never take the server down
            log.exception("housekeeping failed")

    def start(self) -> None:
        self.run_once()
        if self.keep_results_days and self.keep_results_days > 0:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(RETENTION_INTERVAL_S):
            try:
                apply_retention(self.store, self.keep_results_days)
            except Exception:
                log.exception("housekeeping failed")

    def stop(self) -> None:
        self._stop.set()
