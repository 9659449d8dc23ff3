"""Detection on a project's image entries through the engine (``hubseg.slide`` + ``hubseg.pipeline``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from hubseg.errors import MissingPixelSizeError
from hubseg.project.batch import features_to_new_objects
from hubseg.project.store import ImageRef, NewObject, path_from_uri


def image_pixel_size(image: ImageRef, path: Path, override: float | None = None) -> float:
    """Level-0 µm/px: ``override``, else QuPath's calibration of the entry, else the file's own."""
    if override:
        return float(override)
    if image.pixel_size_um:
        return float(image.pixel_size_um)
    from hubseg.slide import open_slide

    try:
        slide = open_slide(path)
    except MissingPixelSizeError:
        raise MissingPixelSizeError(
            f"image {image.name!r} has no pixel size in QuPath or in the file; set it in QuPath "
            "(Image tab > Pixel width/height) or pass --pixel-size-um"
        ) from None
    try:
        return float(slide.pixel_size_um)
    finally:
        slide.close()


def make_image_detector(
    model: str | None = None,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    pixel_size_um: float | None = None,
    threshold: float | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[Callable[[ImageRef], list[NewObject]], str]:
    """Load the model once; return ``(detect_image, model_name)`` where ``detect_image(image)`` reads the
    entry's file at the right pixel size and returns the objects to write."""
    from hubseg.models.registry import ModelRegistry
    from hubseg.paths import data_dir as resolve_data_dir
    from hubseg.pipeline import DetectionOptions, detect_and_write
    from hubseg.slide import open_slide

    loaded = ModelRegistry(resolve_data_dir(data_dir)).load(model, device=device)
    options = DetectionOptions()
    if threshold is not None:
        options = dataclasses.replace(options, threshold=float(threshold))

    def detect_image(image: ImageRef) -> list[NewObject]:
        path = path_from_uri(image.uri)
        slide = open_slide(path, pixel_size_um=image_pixel_size(image, path, pixel_size_um))
        try:
            _, collection = detect_and_write(slide, loaded, options=options, progress=progress)
        finally:
            slide.close()
        return features_to_new_objects(collection, loaded.card.name)

    return detect_image, loaded.card.name
