"""Overlay picture: a downscaled view of the analysed region with object outlines coloured by the review score.

One score everywhere: the colour follows what orders the review list and numbers the ``#N`` labels — the
review score where the model card has a review model, else energy (:func:`hubseg.instances.review_values`).
Red = lowest (least likely a glomerulus, review first, ``#1``) … green = highest. Objects of the uncertain
class (below the gate) get a thicker outline; every object is labelled with its review rank. The legend
uses a TrueType font (DejaVu Sans where installed, else Pillow's bundled scalable font) sized to the
picture, and ASCII text only, so no glyph is missing whichever font is found.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hubseg.errors import InvalidInputError
from hubseg.instances import review_values
from hubseg.paths import atomic_write_bytes

#: Picture formats by file suffix (Pillow format names).
OVERLAY_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
#: TrueType fonts tried in order (Pillow also searches the system font folders for bare file names).
FONT_CANDIDATES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "Arial.ttf", "arial.ttf")


def energy_color(value: float, low: float, high: float) -> tuple[int, int, int]:
    """Red (low) → yellow → green (high)."""
    t = 0.5 if not (high > low) else min(1.0, max(0.0, (value - low) / (high - low)))
    if t < 0.5:
        return (230, int(round(460 * t)), 30)
    return (int(round(230 * (1 - t) * 2)), 200, 30)


def legend_font(size: int) -> ImageFont.ImageFont:
    """A scalable font of ``size`` px: a system TrueType font, else Pillow's bundled one, else the bitmap default."""
    for candidate in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except TypeError:  # pragma: no cover - older Pillow
        return ImageFont.load_default()


def font_size_for(width: int, height: int) -> int:
    """Text height in px for a picture of this size: ~1/70 of its longer side, 12–40 px."""
    return int(min(40, max(12, round(max(width, height) / 70))))


def legend_text(result) -> str:
    objects = result.objects
    if not objects:
        return "no objects"
    name, values = review_values(objects)
    text = (f"{name} {min(values):.2f} (red, review first) to {max(values):.2f} (green); "
            f"{len(objects)} object{'s' if len(objects) != 1 else ''}")
    uncertain = getattr(result, "uncertain_count", 0)
    if uncertain:
        text += f", {uncertain} uncertain (thick outline)"
    return text


def _rings(geometry):
    polys = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    for poly in polys:
        if poly.is_empty or not hasattr(poly, "exterior"):
            continue
        yield poly.exterior
        yield from poly.interiors


def _fitting_font(draw: ImageDraw.ImageDraw, text: str, size: int, room: int):
    """The largest font ≤ ``size`` (down to 8 px) whose rendering of ``text`` fits ``room`` px."""
    while True:
        font = legend_font(size)
        if size <= 8 or draw.textlength(text, font=font) <= room:
            return font
        size -= 1


def render_overlay_image(slide, result, max_size: int = 2048, region=None) -> Image.Image:
    """The overlay as a PIL image (region default: the result's region)."""
    x, y, w, h = region if region is not None else result.region
    downsample = max(1.0, max(w, h) / float(max_size))
    out_w = max(1, int(round(w / downsample)))
    out_h = max(1, int(round(h / downsample)))
    base = slide.read_scaled(x, y, out_w, out_h, downsample)
    image = Image.fromarray(base).convert("RGB")
    text_px = font_size_for(out_w, out_h)
    pad = max(3, text_px // 3)
    legend_h = text_px + 2 * pad + text_px // 2
    canvas = Image.new("RGB", (out_w, out_h + legend_h), (255, 255, 255))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    _, values = review_values(result.objects)
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    label_font = legend_font(text_px)
    width_px = max(2, int(round(max(out_w, out_h) / 500)))
    for obj, value in zip(result.objects, values):
        color = energy_color(value, low, high)
        line = width_px * 2 if obj.uncertain else width_px
        for ring in _rings(obj.geometry):
            coords = np.asarray(ring.coords)
            points = [((px - x) / downsample, (py - y) / downsample) for px, py in coords]
            if len(points) >= 2:
                draw.line(points, fill=color, width=line, joint="curve")
        # Label just above the object's top-most vertex.
        top = min((pt for ring in _rings(obj.geometry) for pt in ring.coords), key=lambda p: p[1], default=None)
        if top is not None:
            tx, ty = (top[0] - x) / downsample, (top[1] - y) / downsample
            draw.text((max(0, tx - text_px // 2), max(0, ty - text_px - 2)), f"#{obj.rank}", fill=color, font=label_font)
    # Legend: the colour scale of the review score (else energy; only when there is something to scale), counts.
    text_x = pad
    if values:
        bar_w = min(max(40, out_w // 5), 10 * text_px)
        for i in range(bar_w):
            value = low + (high - low) * i / max(1, bar_w - 1)
            draw.line([(pad + i, out_h + pad), (pad + i, out_h + legend_h - pad)], fill=energy_color(value, low, high))
        text_x = 2 * pad + bar_w
    text = legend_text(result)
    font = _fitting_font(draw, text, text_px, max(1, out_w - text_x - pad))
    draw.text((text_x, out_h + legend_h / 2), text, fill=(0, 0, 0), font=font, anchor="lm")
    return canvas


def overlay_format(path: str | os.PathLike) -> str:
    """The Pillow format the file suffix names; a suffix hubseg cannot write is an error listing the valid ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in OVERLAY_FORMATS:
        raise InvalidInputError(
            f"overlay file {Path(path).name!r}: the suffix must name the picture format, one of "
            f"{', '.join(sorted(OVERLAY_FORMATS))}"
        )
    return OVERLAY_FORMATS[suffix]


def render_overlay(slide, result, path: str | os.PathLike, max_size: int = 2048, region=None) -> str:
    """Write the overlay to ``path`` (atomically) in the format its suffix names; returns the path."""
    fmt = overlay_format(path)
    canvas = render_overlay_image(slide, result, max_size=max_size, region=region)
    buffer = io.BytesIO()
    canvas.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)
