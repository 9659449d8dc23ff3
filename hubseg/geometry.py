"""Level-0 geometry shared by the stages: region parsing and rasterising polygons onto a map grid.

Inference (the geometry mask), instances (clipping to the analysed area), training (label masks) and
evaluation (predicted label images) all draw polygons the same way, so the rule lives here once.
"""

from __future__ import annotations

import numpy as np
import shapely.geometry
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from hubseg.errors import InvalidInputError


def parse_region(text: str | None):
    """``"X,Y,W,H"`` (level-0 px) → tuple of floats; one-line error otherwise."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise InvalidInputError(f"--region must be X,Y,W,H in level-0 pixels with W,H > 0 (e.g. 0,0,4096,4096); got {text!r}")
    return values


def _polygons(geometry: BaseGeometry):
    if isinstance(geometry, Polygon):
        if not geometry.is_empty:
            yield geometry
    elif hasattr(geometry, "geoms"):
        for part in geometry.geoms:
            yield from _polygons(part)


def _paint(target: np.ndarray, geometry: BaseGeometry, origin, downsample, value) -> None:
    """Set pixels whose centres lie inside ``geometry`` (holes excluded) to ``value``."""
    from skimage.draw import polygon as fill_polygon

    for poly in _polygons(geometry):

        def ring_pixels(ring):
            coords = np.asarray(ring.coords)
            # Pixel (i, j) covers [j, j+1) × [i, i+1); skimage puts pixel centres at integers, hence −0.5.
            u = (coords[:, 0] - origin[0]) / downsample - 0.5
            v = (coords[:, 1] - origin[1]) / downsample - 0.5
            return v, u

        inside = np.zeros(target.shape, bool)
        rr, cc = fill_polygon(*ring_pixels(poly.exterior), shape=target.shape)
        inside[rr, cc] = True
        for interior in poly.interiors:
            rr, cc = fill_polygon(*ring_pixels(interior), shape=target.shape)
            inside[rr, cc] = False
        target[inside] = value


def rasterize_geometry(geometry: BaseGeometry | dict, shape: tuple[int, int], origin=(0.0, 0.0), downsample: float = 1.0) -> np.ndarray:
    """Boolean ``shape`` mask of a (level-0) geometry on a grid whose pixel (i, j) covers
    ``origin + (j, i)·downsample`` (pixel centres inside → True)."""
    if isinstance(geometry, dict):
        geometry = shapely.geometry.shape(geometry)
    mask = np.zeros((int(shape[0]), int(shape[1])), bool)
    _paint(mask, geometry, origin, float(downsample), True)
    return mask


def rasterize_labels(geometries, shape: tuple[int, int], origin=(0.0, 0.0), downsample: float = 1.0) -> np.ndarray:
    """int32 label image: geometry k (0-based) drawn with value k+1, later ones on top."""
    labels = np.zeros((int(shape[0]), int(shape[1])), np.int32)
    for index, geometry in enumerate(geometries, start=1):
        _paint(labels, geometry, origin, float(downsample), index)
    return labels


__all__ = ["parse_region", "rasterize_geometry", "rasterize_labels"]
