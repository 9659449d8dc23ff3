"""Cheap checks of a detection's slide on the request thread: pixel size, extent, decoded size, tile budget.

Nothing here decodes pixels: pyramidal formats are opened lazily (header and tags only) and flat
PNG/JPEG images are measured from their header; those must be decoded whole by the worker, so they are
refused above ``settings.max_image_pixels``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hubseg.errors import HubsegError, InvalidInputError, MissingPixelSizeError
from hubseg.limits import check_pixel_size, check_slide_budget

from hubseg_server.errors import ApiError, from_hubseg

log = logging.getLogger("hubseg_server")

_PIL_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")


def pixel_size(value, field: str = "pixel_size_um") -> float:
    """A pixel size from a request: a number in the plausible range (``hubseg.limits``), else 400/422 naming ``field``."""
    from hubseg_server.validation import number

    try:
        return check_pixel_size(number(value, field), field)
    except InvalidInputError as error:
        raise ApiError(422, "invalid_input", str(error), field) from None


def _flat_image_size(path: Path, field: str) -> tuple[int, int] | None:
    """(width, height) of a PNG/JPEG/BMP from its header; None for other formats."""
    from PIL import Image

    with open(path, "rb") as handle:
        head = handle.read(8)
    if not any(head.startswith(magic) for magic in _PIL_MAGIC):
        return None
    try:
        with Image.open(path) as image:  # lazy: reads the header only
            return image.size
    except Image.DecompressionBombError:  # over PIL's own limit (~179 MP): PIL would refuse to decode it
        raise _too_large(path, f"a flat image of over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP", field) from None
    except Exception:  # unreadable header: let open_slide report it
        return None


def probe_slide(path: Path, pixel_size_um: float | None, max_image_pixels: int,
                field: str = "image") -> tuple[tuple[int, int, int, int], float]:
    """(level-0 bounds x, y, w, h; level-0 pixel size) of a regular image file, without decoding pixels.
    Errors name ``field``'s ``path`` and ``pixel_size_um`` (``field`` is ``image``, ``images[3]``, ...)."""
    from hubseg.slide import open_slide

    size = _flat_image_size(path, field)
    if size is not None:
        width, height = size
        if width * height > max_image_pixels:
            raise _too_large(path, f"a flat {width}×{height} image ({width * height / 1e6:.0f} MP)", field,
                             max_image_pixels)
        if pixel_size_um is None:
            raise _missing_pixel_size(path, field)
        return (0, 0, int(width), int(height)), float(pixel_size_um)
    try:
        slide = open_slide(path, pixel_size_um)
    except MissingPixelSizeError:
        raise _missing_pixel_size(path, field) from None
    except HubsegError as error:
        raise from_hubseg(error, f"{field}.path") from None
    except Exception as error:  # a reader library failing on a damaged file: the file's problem, not a 500
        log.warning("cannot open %s: %s: %s", path, type(error).__name__, error)
        raise ApiError(
            415, "unsupported_format", f"cannot read {path.name} ({type(error).__name__}); is the file complete?",
            f"{field}.path",
        ) from None
    try:
        return tuple(int(v) for v in slide.bounds), float(slide.pixel_size_um)
    finally:
        slide.close()


def _too_large(path: Path, what: str, field: str, max_image_pixels: int | None = None) -> ApiError:
    limit = f"the limit is {max_image_pixels / 1e6:.0f} MP (hubseg serve --max-image-mp)" if max_image_pixels else \
        "PIL refuses to decode it"
    return ApiError(
        422, "invalid_input",
        f"{path.name} is {what} that would have to be decoded whole; {limit}. Convert it to a tiled pyramidal "
        "TIFF, or send a region with the upload form",
        f"{field}.path",
    )


def _missing_pixel_size(path: Path, field: str) -> ApiError:
    name = "pixel_size_um" if field == "image" else f"{field}.pixel_size_um"
    return ApiError(
        422, "missing_pixel_size",
        f"{path.name} has no pixel-size calibration; send '{name}' (µm per level-0 pixel, e.g. 0.25)", name,
    )


def check_budget(svc, model: str, slide_pixel_size_um: float, size: tuple[float, float], field: str) -> int:
    """Refuse (422 naming ``field``) a detection whose grid at the model's pixel size exceeds ``--max-tiles``."""
    try:
        return check_slide_budget(slide_pixel_size_um, size, svc.registry.card(model), svc.settings.max_tiles, field)
    except InvalidInputError as error:
        raise ApiError(422, "invalid_input", str(error), field) from None


def planned_extent(bounds, region=None, geometry=None) -> tuple[float, float]:
    """Level-0 (w, h) a detection covers: the region, the geometry's bounding box inside the image, or the image."""
    x0, y0, x1, y1 = bounds
    if region is not None:
        return float(region[2]), float(region[3])
    if geometry is not None:
        from shapely.geometry import box, shape

        gx0, gy0, gx1, gy1 = shape(geometry).intersection(box(x0, y0, x1, y1)).bounds
        return max(1.0, gx1 - gx0), max(1.0, gy1 - gy0)
    return float(x1 - x0), float(y1 - y0)
