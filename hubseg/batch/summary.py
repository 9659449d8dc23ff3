"""Batch outputs: per-slide records (what ``--resume`` trusts), ``summary.csv`` and ``summary.json``.

Layout of ``OUT_DIR``::

    <stem>.geojson               the slide's QuPath GeoJSON (identical to ``hubseg detect``)
    <stem>.png                   optional overlay
    .hubseg-batch/<stem>.json    the slide's summary row, written after its outputs (= finished)
    summary.csv, summary.json    one row per slide of the last run
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from pathlib import Path
from typing import Any

from hubseg.paths import atomic_write_text

RECORDS_DIR = ".hubseg-batch"
COLUMNS = (
    "path", "sha256_first_mib", "size_bytes", "model", "model_sha256", "status", "error", "glomeruli", "uncertain",
    "glomerular_area_um2", "tissue_area_mm2", "glomeruli_per_mm2", "seconds", "device", "geojson",
)
STATUSES = ("ok", "failed", "skipped")


def output_paths(out_dir: str | os.PathLike, stem: str) -> tuple[Path, Path]:
    """(GeoJSON, overlay PNG) of a slide."""
    return Path(out_dir) / f"{stem}.geojson", Path(out_dir) / f"{stem}.png"


def record_path(out_dir: str | os.PathLike, stem: str) -> Path:
    return Path(out_dir) / RECORDS_DIR / f"{stem}.json"


def failed_row(item, config, error: str) -> dict[str, Any]:
    """A row with the slide's and model's identity and ``status: failed`` (the base every row starts from)."""
    row = dict.fromkeys(COLUMNS)
    row.update(
        path=item.path, model=config.model.name, model_sha256=config.model.weights_sha256, status="failed",
        error=error, stem=item.stem, options=config.options, pixel_size_um=item.pixel_size_um,
        region=list(item.region) if item.region else None,
    )
    return row


def write_record(out_dir: str | os.PathLike, stem: str, row: dict[str, Any]) -> None:
    atomic_write_text(record_path(out_dir, stem), json.dumps(row, ensure_ascii=False, allow_nan=False))


def read_record(out_dir: str | os.PathLike, stem: str) -> dict[str, Any] | None:
    try:
        return json.loads(record_path(out_dir, stem).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def resumable(record: dict[str, Any] | None, item, config, identity: dict[str, Any] | None) -> bool:
    """True when ``record`` says the slide is done with this model, these options and this file content."""
    if not record or record.get("status") not in ("ok", "skipped"):
        return False
    geojson, overlay = output_paths(config.out_dir, item.stem)
    if not geojson.is_file() or (config.overlay and not overlay.is_file()):
        return False
    same = (
        record.get("model_sha256") == config.model.weights_sha256
        and record.get("options") == json.loads(json.dumps(config.options))
        and record.get("pixel_size_um") == item.pixel_size_um
        and record.get("region") == (list(item.region) if item.region else None)
    )
    return bool(same and identity and all(record.get(k) == v for k, v in identity.items()))


def remove_temp_files(out_dir: str | os.PathLike, stem: str) -> int:
    """Delete leftovers of interrupted atomic writes (``.<name>.*.tmp``) of a slide's outputs; returns the count."""
    removed = 0
    geojson, overlay = output_paths(out_dir, stem)
    for target in (geojson, overlay, record_path(out_dir, stem)):
        if not target.parent.is_dir():
            continue
        for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for row in rows if row.get("status") == status) for status in STATUSES}


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    return buffer.getvalue()


def write_summary(out_dir: str | os.PathLike, rows: list[dict[str, Any]], meta: dict[str, Any]) -> tuple[Path, Path]:
    """``summary.csv`` (the columns of :data:`COLUMNS`) and ``summary.json`` (``meta`` + counts + full rows)."""
    out = Path(out_dir)
    csv_path = atomic_write_text(out / "summary.csv", csv_text(rows))
    document = {**meta, "counts": counts(rows), "columns": list(COLUMNS), "slides": rows}
    json_path = atomic_write_text(out / "summary.json", json.dumps(document, ensure_ascii=False, indent=1, allow_nan=False))
    return csv_path, json_path
