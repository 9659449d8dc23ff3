"""One batch worker: loads the model once, then turns slides into GeoJSON files and summary rows.

The same :class:`SlideProcessor` runs inside a local pool process, a Ray actor, or the server's worker
thread. Per slide it runs the exact code path of ``hubseg detect`` (``pipeline.detect`` →
``to_feature_collection`` → ``write_feature_collection``), measures tissue area, and writes the slide's
record last, so a record means "this slide is finished" (what ``--resume`` trusts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hubseg.batch.inputs import BatchItem
from hubseg.batch.summary import failed_row, output_paths, write_record
from hubseg.errors import Cancelled, HubsegError, InvalidInputError

IDENTITY_BYTES = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load the model (no weights travel with tasks)."""

    name: str
    folder: str
    weights_sha256: str


@dataclass(frozen=True)
class BatchConfig:
    """Everything shared by the slides of one batch (picklable: sent once to each worker)."""

    out_dir: str
    model: ModelSpec
    options: dict[str, Any] = field(default_factory=dict)  # hubseg.pipeline.DetectionOptions fields
    overlay: bool = False


def slide_identity(path: str | os.PathLike) -> dict[str, Any]:
    """``sha256_first_mib`` (of the first MiB) and ``size_bytes``: cheap identity of a slide file."""
    with open(path, "rb") as handle:
        head = handle.read(IDENTITY_BYTES)
        size = os.fstat(handle.fileno()).st_size
    return {"sha256_first_mib": hashlib.sha256(head).hexdigest(), "size_bytes": int(size)}


def tissue_area_mm2(slide, region) -> float:
    """Tissue area (mm²) of ``region`` from :func:`hubseg.tissue.tissue_mask`."""
    from hubseg.tissue import tissue_mask

    mask, pixel_size_um = tissue_mask(slide, region=region)
    return float(mask.sum()) * pixel_size_um**2 / 1e6


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, HubsegError):
        text = f"{type(error).__name__}: {text}"
    return text[:500]


class SlideProcessor:
    """Loads ``config.model`` on ``device`` once; :meth:`process` handles one slide and never raises for it."""

    def __init__(self, config: BatchConfig, device: str = "auto", torch_threads: int | None = None, model=None):
        from hubseg.models.registry import load_model_folder
        from hubseg.pipeline import DetectionOptions

        if torch_threads:
            import torch

            torch.set_num_threads(int(torch_threads))
        self.config = config
        self.model = model if model is not None else load_model_folder(config.model.folder, device=device)
        if self.model.card.weights_sha256 != config.model.weights_sha256:
            raise InvalidInputError(
                f"model {config.model.name!r} changed since the batch started (weights sha256 "
                f"{self.model.card.weights_sha256[:12]} != {config.model.weights_sha256[:12]}); restart the batch"
            )
        self.options = DetectionOptions(**config.options)
        self.options.validate()
        self.device = str(self.model.device)

    def process(self, item: BatchItem, should_cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Detect in one slide; returns its summary row (``status`` ok or failed) after writing its record."""
        from hubseg.pipeline import detect_and_write
        from hubseg.slide import open_slide

        started = time.perf_counter()
        geojson, overlay = output_paths(self.config.out_dir, item.stem)
        row = failed_row(item, self.config, "")
        row["device"] = self.device
        try:
            row.update(slide_identity(item.path))
            with open_slide(item.path, pixel_size_um=item.pixel_size_um) as slide:
                result, _ = detect_and_write(slide, self.model, geojson, overlay if self.config.overlay else None,
                                             region=item.region, options=self.options, should_cancel=should_cancel)
                tissue = tissue_area_mm2(slide, result.region)
            area = sum(float(obj.area_um2) for obj in result.objects)
            row.update(
                status="ok", error="", glomeruli=result.count, uncertain=result.uncertain_count,
                glomerular_area_um2=round(area, 1), tissue_area_mm2=round(tissue, 4),
                glomeruli_per_mm2=round(result.count / tissue, 3) if tissue > 0 else None,
                geojson=geojson.name,
            )
        except Cancelled:
            raise
        except FileNotFoundError as error:
            row["error"] = f"slide not found: {error.filename or item.path}"
        except MemoryError:
            row["error"] = "out of memory; give this slide a region in the manifest or use fewer workers per machine"
        except Exception as error:  # a damaged slide must fail its row, never the batch
            row["error"] = _one_line(error)
        if row["status"] != "ok":
            for path in (geojson, overlay):  # nothing half-finished stays behind a failed row
                Path(path).unlink(missing_ok=True)
        row["seconds"] = round(time.perf_counter() - started, 3)
        write_record(self.config.out_dir, item.stem, row)
        return row


def options_dict(options) -> dict[str, Any]:
    """DetectionOptions → plain dict (JSON-ready) for :class:`BatchConfig` and resume checks."""
    data = dataclasses.asdict(options)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}
