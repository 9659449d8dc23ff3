"""The one rule by which pixels of any bit depth become the 8-bit RGB the models see.

Slides read from disk, uploads to the server and training images all go through :func:`to_uint8`, so a
16-bit or float image looks the same to the model whichever way it arrives:

- 8-bit: unchanged. Boolean: 0/255.
- Integers wider than 8 bits: divided by the *full scale of the bit depth the data really use*,
  ``2**ceil(log2(max + 1)) - 1`` (at least 255), then times 255. A 12-bit camera's 0..4095 fills 0..255,
  16-bit data use 65535, and 8-bit data stored in a 16-bit container stay as they are. Keeping the low bits
  this way, instead of the high byte, is what keeps a 12-bit image from turning black (or a grey value of
  30000 from clipping to white).
- Floats: 0..1 when the maximum is at most 1, else the same bit-depth rule on the maximum. NaN → 0.
- Negative values clip to 0.

A tiled reader decides the full scale once per slide (:func:`full_scale`) and passes it to every read, so
that tiles of one slide are scaled alike.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np

from hubseg.errors import UnsupportedFormatError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_BAND_VALUES = 1 << 22  # values converted at once: 16 MiB of float32 however large the image


def full_scale(max_value: float, floating: bool = False) -> float:
    """The value that becomes 255: 1.0 for floats in 0..1, else ``2**bits - 1`` of the bits ``max_value`` needs."""
    if not math.isfinite(max_value) or max_value <= 0:
        return 1.0 if floating else 255.0
    if floating and max_value <= 1.0:
        return 1.0
    bits = max(8, math.ceil(math.log2(float(max_value) + 1.0)))
    return float(2 ** bits - 1)


def array_full_scale(array: np.ndarray) -> float | None:
    """The full scale of ``array`` (None when it is already 8-bit or boolean)."""
    if array.dtype == np.uint8 or array.dtype == bool:
        return None
    floating = np.issubdtype(array.dtype, np.floating)
    peak = float(np.nanmax(array)) if array.size else 0.0
    return full_scale(peak, floating)


def to_uint8(array: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``array`` (any numeric dtype) as uint8 by the module's rule; ``scale`` overrides the full scale."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if scale is None:
        scale = array_full_scale(array)
    factor = np.float32(255.0 / scale)
    out = np.empty(array.shape, np.uint8)
    rows = max(1, _BAND_VALUES // max(1, array[:1].size)) if array.ndim else 1
    for start in range(0, max(1, len(array)) if array.ndim else 1, rows):  # bands bound the float32 copy
        band = array[start:start + rows] if array.ndim else array
        values = np.nan_to_num(band.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        values *= factor
        np.clip(np.rint(values, out=values), 0, 255, out=values)
        if array.ndim:
            out[start:start + rows] = values
        else:
            out[...] = values
    return out


def to_rgb8(array: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Grey, grey+alpha, RGB or RGBA (H×W[×C], any dtype) → contiguous H×W×3 uint8 (alpha dropped)."""
    array = to_uint8(array, scale)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3:
        raise UnsupportedFormatError(f"images must be grey, RGB or RGBA; got an array of shape {array.shape}")
    if array.shape[2] in (1, 2):  # grey (+ alpha)
        return np.repeat(array[:, :, :1], 3, axis=2)
    if array.shape[2] >= 3:
        return np.ascontiguousarray(array[:, :, :3])
    raise UnsupportedFormatError(f"images must be grey, RGB or RGBA; got {array.shape[2]} channels")


def png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from a PNG's IHDR, or None if ``data`` is not a PNG."""
    if len(data) < 29 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def decode_rgb8(data: bytes) -> np.ndarray:
    """Decode PNG/TIFF/JPEG bytes to RGB uint8 by the module's rule (16-bit PNG and TIFF keep their depth)."""
    header = png_header(data)
    if header is not None and header[2] == 16:
        import imagecodecs  # PIL reduces 16-bit colour PNGs to their high byte

        return to_rgb8(imagecodecs.png_decode(data))
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        import tifffile

        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return to_rgb8(_yx_samples(tif.pages[0].asarray(), tif.pages[0]))
    return pil_rgb8(data)


def read_rgb8(path) -> np.ndarray:
    """An image file (PNG, TIFF, JPEG, ...) as RGB uint8 by the module's rule."""
    with open(path, "rb") as handle:
        return decode_rgb8(handle.read())


def pil_rgb8(source) -> np.ndarray:
    """A PIL-readable image (bytes, path or open file) as RGB uint8 by the module's rule."""
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        if image.mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
        return to_rgb8(np.asarray(image))


def _yx_samples(array: np.ndarray, page) -> np.ndarray:
    """A TIFF page's array as Y, X[, samples] (planar RGB moved last)."""
    if array.ndim == 3 and getattr(page, "planarconfig", 1) == 2 and array.shape[0] in (3, 4):
        return np.moveaxis(array, 0, -1)
    return array


__all__ = ["full_scale", "array_full_scale", "to_uint8", "to_rgb8", "png_header", "decode_rgb8", "read_rgb8", "pil_rgb8"]
