"""Instances: probability map → connected components → polygons in level-0 pixels with measurements.

Extraction runs over row bands of the map so memory is bounded by the band, not the slide. Each band is
*responsible* for the objects whose top row falls inside it (as in StarDist's ``big.py``): a band reads its
rows plus one row above (an object touching that row starts in an earlier band) and a margin below that
grows until every object it owns ends inside the window. So no object is duplicated or cut, and the result
equals whole-map extraction exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from scipy import ndimage as ndi
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from hubseg.geometry import rasterize_geometry
from hubseg.fragments import fragment_owners
from hubseg.splitting import SplitOptions, split_touching

# ≈ a 36 µm disc: smaller than any glomerular profile a pathologist would call one (even a polar cut); what the
# model marks below it is debris or a tubule fragment. Per request: DetectionOptions.min_area_um2 / --min-area.
DEFAULT_MIN_AREA_UM2 = 1000.0
DEFAULT_SIMPLIFY_UM = 1.0
DEFAULT_BAND_ROWS = 1024


@dataclass
class DetectedObject:
    """One detected object. ``geometry`` is a shapely (Multi)Polygon in level-0 pixels."""

    geometry: BaseGeometry
    mean_probability: float
    mean_energy: float
    area_um2: float
    perimeter_um: float
    rank: int = 0
    pixel_count: int = 0  # map pixels (model scale)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    class_name: str = "Glomerulus"
    class_color: tuple[int, int, int] = (0, 200, 0)
    uncertain: bool = False
    energy_gate: float | None = None
    # probability (0..1) that the object is a true glomerulus, from the card's review model (None without one)
    review_score: float | None = None
    agreement: float | None = None  # ensembles: the members' agreement on this object, 0..1 (hubseg.agreement)
    reference_rank: int | None = None  # 1 = the most certain object of its image, when references were asked for
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(self.geometry.bounds)

    @property
    def centroid(self) -> tuple[float, float]:
        c = self.geometry.centroid
        return (c.x, c.y)


def mask_to_polygon(mask: np.ndarray) -> BaseGeometry:
    """Exact pixel-edge outline (with holes) of a boolean mask, in its pixel coordinates (x right, y down)."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    diff = np.diff(padded, axis=1)
    rows_start, cols_start = np.nonzero(diff == 1)
    rows_end, cols_end = np.nonzero(diff == -1)
    # np.nonzero is row-major, so starts and ends pair up run by run.
    if rows_start.size == 0:
        return Polygon()
    boxes = shapely.box(cols_start, rows_start, cols_end, rows_start + 1)
    return shapely.union_all(boxes)


def contour_polygon(field: np.ndarray, level: float) -> BaseGeometry:
    """Sub-pixel outline (with holes) of the region ``field > level`` of one 4-connected component.

    Marching squares on pixel centres (``skimage.measure.find_contours``, background 8-connected to match
    4-connected foreground). ``field`` must be padded with values below ``level`` so every contour closes.
    Coordinates are (x = column, y = row) of pixel centres. The largest ring is the exterior, the others are
    holes.
    """
    from skimage.measure import find_contours

    rings = []
    for contour in find_contours(field, level, fully_connected="low"):
        if len(contour) >= 4:
            ring = Polygon(contour[:, ::-1])
            if ring.area > 0:
                rings.append(ring)
    if not rings:
        return Polygon()
    rings.sort(key=lambda r: r.area, reverse=True)
    exterior = rings[0]
    holes = [r.exterior.coords for r in rings[1:] if exterior.contains(r.representative_point())]
    polygon = Polygon(exterior.exterior.coords, holes)
    return polygon if polygon.is_valid else shapely.make_valid(polygon)


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal parts of a geometry (intersections can yield lines/points)."""
    if geometry.is_empty:
        return Polygon()
    if isinstance(geometry, (Polygon, MultiPolygon)):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    polys: list[Polygon] = []
    for part in parts:
        polys.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _fill_small_holes(component: np.ndarray, max_hole_pixels: float) -> np.ndarray:
    filled = ndi.binary_fill_holes(component)
    holes = filled & ~component
    if not holes.any():
        return filled
    hole_labels, count = ndi.label(holes)
    sizes = ndi.sum(holes, hole_labels, index=np.arange(1, count + 1))
    keep_open = np.zeros(count + 1, bool)
    keep_open[1:] = sizes >= max_hole_pixels  # large holes stay holes of the polygon
    filled[keep_open[hole_labels]] = False
    return filled


def extract_instances(
    maps,
    threshold: float = 0.5,
    min_area_um2: float = DEFAULT_MIN_AREA_UM2,
    simplify_um: float = DEFAULT_SIMPLIFY_UM,
    mask_geometry: BaseGeometry | dict | None = None,
    band_rows: int | None = DEFAULT_BAND_ROWS,
    subpixel: bool = True,
    split: SplitOptions | None = SplitOptions(),
    merge_fragments: bool = True,
) -> list[DetectedObject]:
    """Objects of ``maps`` (a :class:`hubseg.inference.PredictionMaps`), ordered by rank.

    Threshold (``probability >= threshold``) → 4-connected components → holes smaller than the minimum
    area filled → outlines (sub-pixel iso-lines of the probability with the component's topology, or with
    ``subpixel=False`` exact pixel edges) in level-0 px, simplified with ``simplify_um`` (µm) → clipped to
    ``mask_geometry`` (level-0) → objects below ``min_area_um2`` dropped. Measurements: mean probability and
    mean negative energy over the object's pixels, area (µm²) and perimeter (µm) of the polygon, and
    ``rank`` (1 = lowest mean energy = most uncertain = review first).

    Touching instances are split (:func:`hubseg.splitting.split_touching`, per component after hole filling
    and clipping) unless ``split`` is ``None``; the parts share their border. Objects lying mostly inside a
    larger object's footprint are merged into it (:mod:`hubseg.fragments`) unless ``merge_fragments`` is off.
    """
    if isinstance(mask_geometry, dict):
        mask_geometry = shapely.geometry.shape(mask_geometry)
    if mask_geometry is not None:
        shapely.prepare(mask_geometry)
    height, width = maps.shape
    ds = float(maps.downsample)
    ox, oy = float(maps.origin[0]), float(maps.origin[1])
    level0_pixel_um = float(maps.pixel_size_um) / ds
    frame = _Frame(
        threshold=threshold, subpixel=subpixel, split=split, mask_geometry=mask_geometry, ds=ds, origin=(ox, oy),
        map_pixel_um=float(maps.pixel_size_um), level0_pixel_um=level0_pixel_um, min_area_um2=float(min_area_um2),
        tolerance_px=max(0.0, float(simplify_um)) / level0_pixel_um,
        map_box=shapely.box(ox, oy, ox + width * ds, oy + height * ds),
    )
    band = max(1, int(band_rows) if band_rows else height)
    objects: list[DetectedObject] = []
    for band_y0 in range(0, height, band):
        window, prob, labels, owned = _band_components(maps, threshold, band_y0, min(height, band_y0 + band), band)
        if not owned:
            continue
        energy = maps.read_rows("energy", *window)
        win_y0 = window[0]
        for label, sl in owned:
            objects.extend(_component_objects(labels[sl] == label, prob[sl], energy[sl], sl, win_y0, frame))
    if merge_fragments:
        objects = _merge_fragments(objects, level0_pixel_um)
    return rank_objects(objects)


@dataclass(frozen=True)
class _Frame:
    """What turns a component's map pixels into objects: the settings and the map's level-0 placement."""

    threshold: float
    subpixel: bool
    split: SplitOptions | None
    mask_geometry: BaseGeometry | None
    ds: float  # map pixel size in level-0 px
    origin: tuple[float, float]  # the map's top-left corner in level-0 px
    map_pixel_um: float
    level0_pixel_um: float
    min_area_um2: float
    tolerance_px: float  # outline simplification, level-0 px
    map_box: BaseGeometry


def _band_components(maps, threshold: float, band_y0: int, band_y1: int, band: int):
    """The components that start in rows ``band_y0:band_y1``, labelled in a window of rows below them that
    grows until each lies wholly inside it: ((first row, end row) of the window, probability, labels,
    [(label, slices)])."""
    height = maps.shape[0]
    margin = max(32, band // 4)
    while True:
        win_y0 = max(0, band_y0 - 1)
        win_y1 = min(height, band_y1 + margin)
        prob = maps.read_rows("probability", win_y0, win_y1)
        labels, _ = ndi.label(prob >= threshold)
        owned: list[tuple[int, tuple[slice, slice]]] = []
        grow = False
        for label, sl in enumerate(ndi.find_objects(labels), start=1):
            if sl is None:
                continue
            top = sl[0].start + win_y0
            if not band_y0 <= top < band_y1:
                continue  # touching the row above means it started in an earlier band
            if sl[0].stop + win_y0 >= win_y1 and win_y1 < height:
                grow = True  # might continue below the window
                break
            owned.append((label, sl))
        if not grow:
            return (win_y0, win_y1), prob, labels, owned
        margin *= 2


def _component_objects(component: np.ndarray, prob: np.ndarray, energy: np.ndarray, sl, win_y0: int,
                       frame: _Frame) -> list[DetectedObject]:
    """The objects of one component (its pixels in its bounding box ``sl`` of a window starting at row
    ``win_y0``): small holes filled, clipped to the mask, split where instances touch."""
    map_pixel_area_um2 = frame.map_pixel_um**2
    filled = _fill_small_holes(component, frame.min_area_um2 / map_pixel_area_um2)
    if filled.sum() * map_pixel_area_um2 < frame.min_area_um2 * 0.5:
        return []  # cannot reach the minimum area even after polygon rounding
    # Map-pixel → level-0 transform of this bounding box.
    bx0 = frame.origin[0] + sl[1].start * frame.ds
    by0 = frame.origin[1] + (sl[0].start + win_y0) * frame.ds
    if frame.mask_geometry is not None:
        filled &= rasterize_geometry(frame.mask_geometry, filled.shape, (bx0, by0), frame.ds)
        if not filled.any():
            return []
    if frame.split is not None:
        parts, n_parts = split_touching(filled, frame.map_pixel_um, frame.split)
    else:
        parts, n_parts = filled.astype(np.int32), 1
    objects = []
    for part in range(1, n_parts + 1):
        obj = _make_object(
            parts == part, (parts > 0) & (parts != part), prob, energy, frame.threshold, frame.subpixel,
            (frame.ds, bx0, by0), frame.map_box, frame.tolerance_px, frame.mask_geometry, frame.level0_pixel_um,
            frame.min_area_um2,
        )
        if obj is not None:
            objects.append(obj)
    return objects


def _merge_fragments(objects: list[DetectedObject], level0_pixel_um: float) -> list[DetectedObject]:
    """Each fragment merged into its owner: outline = union, means weighted by pixel count, area/perimeter anew."""
    owners = fragment_owners([o.geometry for o in objects])
    if not owners:
        return objects
    members: dict[int, list[int]] = {}
    for fragment, owner in owners.items():
        members.setdefault(owner, []).append(fragment)
    for owner, fragments in members.items():
        parts = [objects[owner]] + [objects[i] for i in fragments]
        weights = np.asarray([max(1, p.pixel_count) for p in parts], np.float64)
        geometry = _polygonal(shapely.union_all([p.geometry for p in parts]))
        objects[owner] = DetectedObject(
            geometry=geometry,
            mean_probability=float(np.average([p.mean_probability for p in parts], weights=weights)),
            mean_energy=float(np.average([p.mean_energy for p in parts], weights=weights)),
            area_um2=float(geometry.area * level0_pixel_um**2),
            perimeter_um=float(geometry.length * level0_pixel_um),
            pixel_count=int(sum(p.pixel_count for p in parts)),
            extra={"merged_fragments": len(fragments)},
        )
    return [o for i, o in enumerate(objects) if i not in owners]


def _make_object(own, siblings, prob, energy, threshold, subpixel, transform, map_box, tolerance_px, mask_geometry,
                 level0_pixel_um, min_area_um2) -> DetectedObject | None:
    """One object from its pixels ``own`` in a component's bounding box (``siblings``: the other parts of a
    split component), or ``None`` when its polygon ends up below the minimum area."""
    ds, bx0, by0 = transform
    if subpixel:
        # Iso-line of the probability, forced to the object's topology: its pixels stay above the threshold,
        # everything else (background, other objects) below it. Sibling parts get the probability mirrored at
        # the threshold, so the iso-line crosses each cut edge at the same point for both parts (shared border).
        below = np.minimum(prob, threshold - 1e-3)
        if siblings.any():
            below = np.where(siblings, np.minimum(2 * threshold - prob, threshold - 1e-3), below)
        field = np.full((own.shape[0] + 2, own.shape[1] + 2), threshold - 1.0, np.float32)
        field[1:-1, 1:-1] = np.where(own, np.maximum(prob, threshold + 1e-3), below)
        outline = contour_polygon(field, threshold)
        # Padded pixel-centre coordinates → level-0: centre of crop pixel (i, j) is (j + 0.5, i + 0.5).
        outline = affinity.affine_transform(outline, [ds, 0.0, 0.0, ds, bx0 - 0.5 * ds, by0 - 0.5 * ds])
        outline = outline.intersection(map_box)
    else:
        outline = mask_to_polygon(own)
        outline = affinity.affine_transform(outline, [ds, 0.0, 0.0, ds, bx0, by0])
    if tolerance_px > 0:
        outline = outline.simplify(tolerance_px, preserve_topology=True)
    if mask_geometry is not None:
        outline = outline.intersection(mask_geometry)
    if not outline.is_valid:
        outline = shapely.make_valid(outline)
    outline = _polygonal(outline)
    if outline.is_empty:
        return None
    area_um2 = outline.area * level0_pixel_um**2
    if area_um2 < min_area_um2:
        return None
    return DetectedObject(
        geometry=outline,
        mean_probability=float(prob[own].mean()),
        mean_energy=float(energy[own].mean()),
        area_um2=float(area_um2),
        perimeter_um=float(outline.length * level0_pixel_um),
        pixel_count=int(own.sum()),
    )


def review_values(objects: list[DetectedObject]) -> tuple[str, list[float]]:
    """The one score review order, ``#N`` labels and overlay colours follow: ``("review score", scores)`` when
    every object has one (the card has a review model), else ``("energy", mean energies)``; low = review first."""
    if objects and all(o.review_score is not None for o in objects):
        return "review score", [float(o.review_score) for o in objects]
    return "energy", [float(o.mean_energy) for o in objects]


def rank_objects(objects: list[DetectedObject]) -> list[DetectedObject]:
    """Sort for review and number ranks from 1 by :func:`review_values` (lowest first: most likely false / most
    uncertain), mean energy as the tie-break."""
    _, values = review_values(objects)
    order = sorted(range(len(objects)), key=lambda i: (values[i], objects[i].mean_energy, objects[i].bounds[1],
                                                       objects[i].bounds[0]))
    ordered = [objects[i] for i in order]
    for rank, obj in enumerate(ordered, start=1):
        obj.rank = rank
    return ordered


def level0_pixel_size(maps) -> float:
    return float(maps.pixel_size_um) / float(maps.downsample)


__all__ = [
    "DetectedObject",
    "extract_instances",
    "mask_to_polygon",
    "rank_objects",
    "review_values",
]
