"""Helpers for the paquo tests: plain TIFFs QuPath's ImageJ server opens, projects made and read back
through paquo, and what a pathologist does in QuPath. Fixtures using them are in conftest.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from shapely.geometry import Point, box

from hubseg.project import review

REPO = Path(__file__).resolve().parents[2]
PIXEL_SIZE_UM = 0.5
BACKGROUND = (232, 182, 204)  # pink "tissue" (the threshold model: background)
NUCLEUS = (84, 40, 112)  # dark disks (the threshold model: foreground), r >= 40 px passes the minimum area
SLIDE_SIZE = (640, 448)
DISKS = {  # (cx, cy, r) in level-0 px
    "kidney-a.tif": [(110, 110, 44), (330, 200, 50), (520, 330, 40), (160, 340, 42)],
    "kidney-b.tif": [(200, 150, 46), (470, 300, 44)],
}
MEASUREMENTS = {"hubseg energy", "hubseg probability", "hubseg rank", "Area µm^2", "Perimeter µm"}
OTHER_BOX = box(590, 10, 630, 50)  # the user's own unclassified-ish annotation, away from every disk


def write_plain_tiff(path: Path, disks, pixel_size_um: float = PIXEL_SIZE_UM) -> Path:
    """Striped (not tiled) RGB TIFF with resolution tags: what QuPath's ImageJ server opens."""
    import tifffile

    width, height = SLIDE_SIZE
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, r in disks:
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = NUCLEUS
    tifffile.imwrite(path, image, photometric="rgb", compression="zlib", rowsperstrip=64,
                     resolution=(1e4 / pixel_size_um, 1e4 / pixel_size_um), resolutionunit="CENTIMETER")
    return path


def new_project(folder: Path, images: list[Path]) -> Path:
    """A QuPath project made by paquo, each image with one user annotation of class Other."""
    from paquo.classes import QuPathPathClass
    from paquo.projects import QuPathProject

    with QuPathProject(folder, mode="x") as project:
        for image in images:
            entry = project.add_image(image)
            entry.hierarchy.add_annotation(OTHER_BOX, path_class=QuPathPathClass("Other"))
    return folder / "project.qpproj"


def read_back(project_file: Path) -> dict[str, list[dict]]:
    """Every annotation/detection per image name, as QuPath reads them from disk (read-only project)."""
    from paquo.projects import QuPathProject

    images = {}
    with QuPathProject(project_file, mode="r") as project:
        for entry in project.images:
            objects = []
            hierarchy = entry.hierarchy
            for object_type, proxy in (("annotation", hierarchy.annotations), ("detection", hierarchy.detections)):
                for path_object in proxy:
                    metadata = path_object.java_object.getMetadata()
                    objects.append({
                        "id": str(path_object.java_object.getID()),
                        "type": object_type,
                        "class": path_object.path_class.name if path_object.path_class else None,
                        "roi": path_object.roi,
                        "measurements": dict(path_object.measurements),
                        "metadata": {str(k): str(metadata.get(k)) for k in metadata.keySet()},
                    })
            images[str(entry.image_name)] = objects
    return images


def hubseg_objects(objects: list[dict]) -> list[dict]:
    return sorted((o for o in objects if review.META_MODEL in o["metadata"]), key=lambda o: o["roi"].centroid.x)


def disk_at(name: str, geometry) -> tuple[int, int, int] | None:
    centre = geometry.centroid
    return next((d for d in DISKS[name] if Point(d[0], d[1]).distance(centre) < 6), None)


def copy_project(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "proj"
    shutil.copytree(template.parent, target)
    shutil.rmtree(target / "hubseg", ignore_errors=True)
    return target / "project.qpproj"


def review_in_qupath(project_file: Path) -> dict[str, str]:
    """What a pathologist does in QuPath, written through QuPath's own objects: on kidney-a accept one
    proposal, redraw one, reject one (class Rejected), leave one pending, and declare a reviewed region
    over the slide; on kidney-b draw their own Glomerulus over the second disk. Returns object ids by role."""
    from paquo.classes import QuPathPathClass
    from paquo.projects import QuPathProject

    roles = {}
    with QuPathProject(project_file, mode="r+") as project:
        a, b = sorted(project.images, key=lambda e: e.image_name)
        proposals = sorted((o for o in a.hierarchy.annotations if o.path_class and o.path_class.name == "Glomerulus"),
                           key=lambda o: o.roi.centroid.x)
        accepted, edited, pending, rejected = proposals  # by x: disks at 110, 160, 330, 520
        accepted.java_object.getMetadata().put(review.META_REVIEW, review.ACCEPTED)
        edited.update_roi(Point(160, 340).buffer(47))
        rejected.update_path_class(QuPathPathClass("Rejected"))
        region = a.hierarchy.add_annotation(box(0, 0, *SLIDE_SIZE), path_class=QuPathPathClass("Reviewed region"))
        mine = b.hierarchy.add_annotation(Point(470, 300).buffer(45), path_class=QuPathPathClass("Glomerulus"))
        for role, path_object in (("accepted", accepted), ("edited", edited), ("pending", pending),
                                  ("rejected", rejected), ("region", region), ("user_glomerulus", mine)):
            roles[role] = str(path_object.java_object.getID())
        project.save()
    return roles
