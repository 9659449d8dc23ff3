"""Fragments: objects lying mostly inside another object's footprint belong to it.

A glomerulus the model sees in pieces — a sclerosed tuft apart from its capsule, a rim segment inside a
lobulated outline, a piece in a hole of the outline — gives one true object and false ones that lie inside the
same glomerulus. The footprint of an object is its convex hull (the glomerulus it outlines, holes and notches
included); an object with at least :data:`FRAGMENT_SHARE` of its area inside the footprint of a larger object
is a fragment of it and is merged into it (:func:`hubseg.instances.extract_instances`). Everything here is
geometry only, so it runs once over the objects of the whole map and keeps banded == whole-map extraction.
"""

from __future__ import annotations

import shapely
from shapely.strtree import STRtree

FRAGMENT_SHARE = 0.5  # "mostly inside": at least half of the object's area


def fragment_owners(geometries, share: float = FRAGMENT_SHARE) -> dict[int, int]:
    """``{fragment index: owner index}`` for the given polygons (owners are never fragments themselves).

    Larger objects are settled first, so a fragment of a fragment goes to the outermost owner; among several
    candidate owners the one covering most of the fragment wins.
    """
    geometries = list(geometries)
    if len(geometries) < 2:
        return {}
    areas = [float(g.area) for g in geometries]
    footprints = [g.convex_hull for g in geometries]
    tree = STRtree(footprints)
    owners: dict[int, int] = {}
    for index in sorted(range(len(geometries)), key=lambda i: -areas[i]):
        geometry = geometries[index]
        if areas[index] <= 0:
            continue
        best, best_overlap = None, share * areas[index]
        for candidate in tree.query(geometry):
            candidate = int(candidate)
            if candidate == index or candidate in owners or areas[candidate] <= areas[index]:
                continue
            overlap = float(shapely.intersection(geometry, footprints[candidate]).area)
            if overlap >= best_overlap:
                best, best_overlap = candidate, overlap
        if best is not None:
            owners[index] = best
    return owners


__all__ = ["FRAGMENT_SHARE", "fragment_owners"]
