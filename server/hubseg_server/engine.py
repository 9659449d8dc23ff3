"""The only module that calls the hubseg library for jobs: detection and training runs.

Requests reaching here were fully validated by the routes (paths already checked against the slides
roots and resolved); this module turns them into library calls and returns plain JSON-ready results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from hubseg.errors import InvalidInputError, NotFoundError, UnsupportedFormatError


def load_upload_rgb(data: bytes) -> np.ndarray:
    """Decode a stored upload (checked by the route from its header) into uint8 H×W×3 RGB by the one bit-depth
    rule of :mod:`hubseg.pixels` (alpha dropped, grey replicated, 16-bit/float scaled by their real range)."""
    from hubseg.pixels import decode_rgb8

    try:
        rgb = decode_rgb8(data)
    except Exception as error:  # decoders raise many types for damaged files
        raise UnsupportedFormatError(
            f"cannot decode the uploaded image ({type(error).__name__}: {str(error)[:200]}); upload it again as PNG "
            "or TIFF"
        ) from None
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise UnsupportedFormatError("the uploaded image has no pixels")
    return rgb


def _geometry(data: dict[str, Any] | None):
    if not data:
        return None
    from shapely.geometry import shape

    return shape(data)


def open_request_slide(request: dict[str, Any], store):
    """The slide a validated detection request names (a file path or a stored upload)."""
    from hubseg.slide import ArraySlide, open_slide

    if "image_path" in request:
        return open_slide(request["image_path"], request.get("pixel_size_um"))
    upload = store.get_upload(request["upload_id"])
    if upload is None:
        raise NotFoundError(f"upload {request['upload_id']} is gone from the data directory")
    rgb = load_upload_rgb(Path(upload["path"]).read_bytes())
    return ArraySlide(rgb, upload["pixel_size_um"], origin=(upload["origin_x"], upload["origin_y"]),
                      downsample=upload["downsample"])


def detection_options(options: dict[str, Any]):
    from hubseg.pipeline import DetectionOptions

    return DetectionOptions(**options)


def run_detection(request: dict[str, Any], model, store, progress: Callable, should_cancel: Callable,
                  max_tiles: int | None = None) -> dict:
    """Run one detection; returns the QuPath FeatureCollection (level-0 px). ``max_tiles`` is checked again
    here (the route checked it before queuing) because a re-queued job may meet a lower limit."""
    from hubseg.pipeline import detect_and_write

    slide = open_request_slide(request, store)
    try:
        _, collection = detect_and_write(
            slide,
            model,
            region=tuple(request["region"]) if request.get("region") else None,
            geometry=_geometry(request.get("geometry")),
            options=detection_options({**(request.get("options") or {}), "max_tiles": max_tiles}),
            progress=progress,
            should_cancel=should_cancel,
        )
        return collection
    finally:
        slide.close()


TRAIN_PARAM_NAMES = {"epochs": "epochs", "learning_rate": "lr", "batch_size": "batch_size", "seed": "seed"}


def _upload_label_set(document: dict[str, Any], upload: dict[str, Any]):
    """A label set on an uploaded region, re-expressed in the upload's own pixels so the library can open it.

    Training does not care where the pixels sat on the slide: geometries are mapped with
    ``x' = (x - origin_x) / downsample`` (same for y) and the pixel size becomes ``pixel_size_um · downsample``.
    """
    from shapely import affinity
    from shapely.geometry import mapping, shape

    from hubseg.labels import validate_label_set

    ds, ox, oy = float(upload["downsample"]), float(upload["origin_x"]), float(upload["origin_y"])
    matrix = [1 / ds, 0, 0, 1 / ds, -ox / ds, -oy / ds]

    def convert(geometry: dict) -> dict:
        return mapping(affinity.affine_transform(shape(geometry), matrix))

    moved = dict(document)
    moved["image"] = {"path": str(upload["path"])}
    moved["pixel_size_um"] = float(document["pixel_size_um"]) * ds
    moved["regions"] = [convert(g) for g in document["regions"]]
    features = dict(document["features"])
    features["features"] = [{**f, "geometry": convert(f["geometry"])} for f in document["features"]["features"]]
    moved["features"] = features
    return validate_label_set(json_ready(moved))


def json_ready(data):
    import json

    return json.loads(json.dumps(data))


def label_set_image_problem(document: dict[str, Any], store, slides_roots) -> str | None:
    """Why a stored label set's image cannot be used now (gone, moved outside the roots, not a file), or None."""
    from hubseg_server.errors import ApiError
    from hubseg_server.security import require_regular_file, resolve_slide_path

    image = document["image"]
    if "upload_id" in image:
        upload = store.get_upload(image["upload_id"])
        if upload is None or not Path(upload["path"]).is_file():
            return f"its uploaded image {image['upload_id']} is gone"
        return None
    try:
        require_regular_file(resolve_slide_path(image["path"], slides_roots))
    except ApiError as error:
        return error.message
    return None


def training_sources(label_ids: list[str], store, slides_roots, skip_unusable: bool = False,
                     warn: Callable[[str], None] | None = None) -> list:
    """Library training sources for stored label sets (paths re-checked against the current slides roots).

    With ``skip_unusable`` (``"label_sets": "all"``) a label set whose image is gone is skipped with a
    ``warn(message)`` instead of failing the job; at least one must remain.
    """
    from hubseg.labels import validate_label_set
    from hubseg.training.sources import LabelSetSource

    sources = []
    for label_id in label_ids:
        document = store.read_label_set(label_id)
        problem = "it is gone from the data directory" if document is None else \
            label_set_image_problem(document, store, slides_roots)
        if problem is not None:
            message = f"label set {label_id}: {problem}"
            if not skip_unusable:
                raise (NotFoundError if document is None else InvalidInputError)(message)
            if warn is not None:
                warn(f"skipped {message}")
            continue
        image = document["image"]
        if "upload_id" in image:
            sources.append(LabelSetSource(_upload_label_set(document, store.get_upload(image["upload_id"]))))
        else:
            sources.append(LabelSetSource(validate_label_set(document)))
    if not sources:
        raise InvalidInputError("none of the label sets can be used: their images are gone (see the job's warnings); "
                                "delete them (DELETE /v1/labels/{id}) and post new ones")
    return sources


def run_training(request: dict[str, Any], registry, store, device, slides_roots, progress: Callable,
                 should_cancel: Callable, warn: Callable[[str], None] | None = None,
                 on_summary: Callable[[dict], None] | None = None):
    """Fine-tune ``base_model`` on stored label sets, or self-train it on ``unlabelled`` slides (mixed with the label
    sets); registers (and optionally activates) the new version. A self-trained version is activated only when its
    safety check did not flag it (else a warning says so); ``on_summary(adaptation summary)`` reports what it learned."""
    from hubseg.training.adapt_report import adaptation_summary, safe_to_activate

    from hubseg.training import TrainConfig, train

    params = {TRAIN_PARAM_NAMES[k]: v for k, v in (request.get("params") or {}).items() if k in TRAIN_PARAM_NAMES}
    sources = training_sources(request["label_sets"], store, slides_roots,
                               skip_unusable=bool(request.get("all_label_sets")), warn=warn) if request["label_sets"] else []
    if request.get("unlabelled"):
        card = _self_train(request, params, sources, registry, device, store, slides_roots, progress, should_cancel)
    else:
        config = TrainConfig(base_model=request["base_model"], device=str(device), **params)
        card = train(config, sources, registry, progress=progress, should_cancel=should_cancel)
    activate = bool(request.get("activate"))
    if request.get("unlabelled"):
        if activate and not safe_to_activate(card):
            activate = False
            if warn is not None:
                reasons = "; ".join(card.provenance["self_training"]["safety"]["reasons"])
                warn(f"{card.name} was not activated: its safety check flagged it ({reasons}); activate it explicitly "
                     f"(POST /v1/models/{card.name}/activate) only after checking its detections")
        if on_summary is not None:
            on_summary(adaptation_summary(card, activated=activate))
    if activate:
        registry.activate(card.name)
    return card


def _unlabelled_upload(upload_id: str, store, field: str) -> tuple[Path, float]:
    """(file, µm/px of its own pixels) of an upload to self-train on; where it sat on a slide does not matter."""
    upload = store.get_upload(upload_id)
    if upload is None or not Path(upload["path"]).is_file():
        raise NotFoundError(f"'{field}': upload {upload_id} is gone (deleted while the job was queued?); upload the "
                            "image again (POST /v1/uploads) and start a new training")
    return Path(upload["path"]), float(upload["pixel_size_um"]) * float(upload["downsample"])


def teacher_cap(params: dict[str, Any]):
    """The teacher-pass cap from a request's ``tiles_per_slide`` / ``max_teacher_tiles`` (library defaults)."""
    from hubseg.training.teacher_tiles import DEFAULT_MAX_TEACHER_TILES, DEFAULT_TILES_PER_SLIDE, TeacherCap

    return TeacherCap(per_slide=int(params.get("tiles_per_slide", DEFAULT_TILES_PER_SLIDE)),
                      max_total=int(params.get("max_teacher_tiles", DEFAULT_MAX_TEACHER_TILES)))


def _self_train(request, params, sources, registry, device, store, slides_roots, progress, should_cancel):
    """``hubseg adapt`` for a job whose paths and uploads were re-checked when it started
    (:mod:`hubseg_server.recheck`)."""
    from dataclasses import replace

    from hubseg.training.selftrain import SelfTrainConfig, self_train

    images = []
    for i, item in enumerate(request["unlabelled"]):
        if "upload_id" in item:
            images.append(_unlabelled_upload(item["upload_id"], store, f"unlabelled[{i}].upload_id"))
        else:
            images.append((Path(item["path"]), item.get("pixel_size_um")))
    given = request.get("params") or {}
    config = SelfTrainConfig(rounds=int(given.get("rounds", 1)), cap=teacher_cap(given))
    epochs = params.pop("epochs", None)
    config.epochs = epochs
    config.train = replace(config.train, device=str(device), **params)
    cards = self_train(images, registry, config, base_model=request["base_model"], label_sources=sources,
                       progress=progress, should_cancel=should_cancel)
    return cards[-1]
