"""Checks a job's request again when the job *starts* running, against the server as it is now.

Between queuing and running, a slides root may have been removed (restart with other ``--slides-root``), a
slide swapped for a symlink pointing outside the roots, an upload deleted, or ``--max-tiles`` lowered. Every
job kind goes through :func:`recheck_request` first; it returns the request with every path re-resolved
(symlinks followed), so the job opens exactly the file that passed the check. A failed check raises the
same :class:`ApiError` (code and wording) the route would have answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubseg.errors import InvalidInputError
from hubseg.limits import check_slide_budget

from hubseg_server.errors import ApiError
from hubseg_server.security import require_regular_file, resolve_slide_path


@dataclass(frozen=True)
class JobLimits:
    """What a starting job is checked against: the current roots and limits of this server."""

    slides_roots: tuple[Path, ...]
    max_tiles: int | None = None
    max_image_pixels: int | None = None


def _path(raw: str, limits: JobLimits, field: str) -> str:
    return str(require_regular_file(resolve_slide_path(raw, limits.slides_roots, field), field))


def _upload(store, upload_id: str, field: str) -> dict:
    upload = store.get_upload(upload_id)
    if upload is None or not Path(upload["path"]).is_file():
        raise ApiError(404, "not_found", f"'{field}': its uploaded image {upload_id} is gone (deleted while the job "
                       "was queued?); upload it again (POST /v1/uploads) and submit a new job", field)
    return upload


def recheck_request(job: dict[str, Any], store, registry, limits: JobLimits) -> dict[str, Any]:
    """The job's request with its paths re-resolved under the current roots; raises ApiError naming the field."""
    import json

    kind, request = job["kind"], json.loads(job["request"])
    if kind == "detection":
        _detection(request, store, registry.card(job["model"]), limits)
    elif kind == "batch":
        if "project_path" in request:
            request["project_path"] = _path(request["project_path"], limits, "project.path")
        else:
            request["images"] = [{**image, "path": _path(image["path"], limits, f"images[{i}].path")}
                                 for i, image in enumerate(request["images"])]
    elif kind == "training" and request.get("unlabelled"):
        card = registry.card(request["base_model"])
        request["unlabelled"] = [_unlabelled(item, f"unlabelled[{i}]", store, card, limits)
                                 for i, item in enumerate(request["unlabelled"])]
    return request


def _detection(request: dict, store, card, limits: JobLimits) -> None:
    """Re-resolve a detection's image and check its area against the current ``--max-tiles``, naming the field
    the route names (the pixel size if sent, else the region, the geometry or the image)."""
    from hubseg_server.slides import planned_extent, probe_slide

    if "image_path" in request:
        request["image_path"] = _path(request["image_path"], limits, "image.path")
        bounds, pixel_size = probe_slide(Path(request["image_path"]), request.get("pixel_size_um"),
                                         limits.max_image_pixels or 1 << 62)
        x0, y0, w, h = bounds
        bounds = (x0, y0, x0 + w, y0 + h)
        pixel_field = "pixel_size_um" if "pixel_size_um" in request else None
    else:
        upload = _upload(store, request.get("upload_id", ""), "upload_id")
        x0, y0, ds = upload["origin_x"], upload["origin_y"], upload["downsample"]
        bounds = (x0, y0, x0 + upload["width"] * ds, y0 + upload["height"] * ds)
        pixel_size, pixel_field = upload["pixel_size_um"], "pixel_size_um"
    field = pixel_field or next((name for name in ("region", "geometry") if request.get(name)), "image.path")
    extent = planned_extent(bounds, request.get("region"), request.get("geometry"))
    _check_budget(pixel_size, extent, card, limits, field)


def _check_budget(pixel_size: float, size, card, limits: JobLimits, field: str) -> None:
    if limits.max_tiles is None:
        return
    try:
        check_slide_budget(pixel_size, size, card, limits.max_tiles, field)
    except InvalidInputError as error:
        raise ApiError(422, "invalid_input", str(error), field) from None


def _unlabelled(item: dict, field: str, store, card, limits: JobLimits) -> dict:
    """One self-training image: its path (or upload) and its whole extent within the tile budget."""
    from hubseg_server.slides import probe_slide

    if "upload_id" in item:
        upload = _upload(store, item["upload_id"], f"{field}.upload_id")
        pixel_size, budget_field = upload["pixel_size_um"], f"{field}.upload_id"
        size = (upload["width"] * upload["downsample"], upload["height"] * upload["downsample"])
        item = dict(item)
    else:
        item = {**item, "path": _path(item["path"], limits, f"{field}.path")}
        (_, _, width, height), pixel_size = probe_slide(Path(item["path"]), item.get("pixel_size_um"),
                                                        limits.max_image_pixels or 1 << 62, field)
        size = (width, height)
        budget_field = f"{field}.pixel_size_um" if "pixel_size_um" in item else f"{field}.path"
    _check_budget(pixel_size, size, card, limits, budget_field)
    return item


__all__ = ["JobLimits", "recheck_request"]
