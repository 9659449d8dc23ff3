"""Overlay PNG: a downscaled picture of the analysed region with object outlines coloured by energy.

Red = lowest energy (least confident, review first) … green = highest. Objects of the uncertain class
(below the energy gate) get a thicker outline; every object is labelled with its review rank.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hubseg.paths import atomic_write_bytes

_LEGEND_HEIGHT = 22


def energy_color(value: float, low: float, high: float) -> tuple[int, int, int]:
    """Red (low) → yellow → green (high)."""
    t = 0.5 if not (high > low) else min(1.0, max(0.0, (value - low) / (high - low)))
    if t < 0.5:
        return (230, int(round(460 * t)), 30)
    return (int(round(230 * (1 - t) * 2)), 200, 30)


def _rings(geometry):
    polys = geometry.geoms if hasattr(geometry, "geoms") else [geometry]
    for poly in polys:
        if poly.is_empty or not hasattr(poly, "exterior"):
            continue
        yield poly.exterior
        yield from poly.interiors


def render_overlay_image(slide, result, max_size: int = 2048, region=None) -> Image.Image:
    """The overlay as a PIL image (region default: the result's region)."""
    x, y, w, h = region if region is not None else result.region
    downsample = max(1.0, max(w, h) / float(max_size))
    out_w = max(1, int(round(w / downsample)))
    out_h = max(1, int(round(h / downsample)))
    base = slide.read_scaled(x, y, out_w, out_h, downsample)
    image = Image.fromarray(base).convert("RGB")
    canvas = Image.new("RGB", (out_w, out_h + _LEGEND_HEIGHT), (255, 255, 255))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    energies = [o.mean_energy for o in result.objects]
    low, high = (min(energies), max(energies)) if energies else (0.0, 1.0)
    font = ImageFont.load_default()
    width_px = max(2, int(round(max(out_w, out_h) / 500)))
    for obj in result.objects:
        color = energy_color(obj.mean_energy, low, high)
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
            draw.text((max(0, tx - 8), max(0, ty - 14)), f"#{obj.rank}", fill=color, font=font)
    # Legend: energy scale and counts.
    for i in range(min(200, out_w)):
        value = low + (high - low) * i / 199.0
        draw.line([(i + 4, out_h + 4), (i + 4, out_h + _LEGEND_HEIGHT - 4)], fill=energy_color(value, low, high))
    text = f"energy {low:.2f} (review first) → {high:.2f}   {len(result.objects)} objects"
    if getattr(result, "uncertain_count", 0):
        text += f", {result.uncertain_count} uncertain (thick)"
    try:
        draw.text((min(out_w, 210), out_h + 5), text, fill=(0, 0, 0), font=font)
    except UnicodeEncodeError:  # the bitmap default font of old Pillow lacks "→"
        draw.text((min(out_w, 210), out_h + 5), text.replace("→", "->"), fill=(0, 0, 0), font=font)
    return canvas


def render_overlay(slide, result, path: str | os.PathLike, max_size: int = 2048, region=None) -> str:
    """Write the overlay PNG to ``path`` (atomically) and return the path."""
    canvas = render_overlay_image(slide, result, max_size=max_size, region=region)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=False)
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)
