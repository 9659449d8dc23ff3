"""An in-memory ProjectStore: behaves like the paquo store for the logic under test (no QuPath)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import shapely

from hubseg.project import review
from hubseg.project.store import ImageRef, NewObject, ProjectObject


def float32_roundtrip(geometry):
    """What QuPath does to vertices: it stores them as float32."""
    return shapely.transform(geometry, lambda xy: xy.astype(np.float32).astype(np.float64))


class MemoryProjectStore:
    def __init__(self, project_dir: Path, images: list[ImageRef]):
        self.path = Path(project_dir) / "project.qpproj"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("{}")
        self._images = images
        self.objects: dict[str, list[ProjectObject]] = {image.entry_id: [] for image in images}
        self._ids = itertools.count(1)
        self.writes = 0
        for image in images:
            folder = self.path.parent / "data" / image.entry_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "data.qpdata").write_bytes(b"qpdata-" + image.entry_id.encode())

    def images(self):
        return list(self._images)

    def read_objects(self, image):
        return [ProjectObject(o.key, o.geometry, o.class_name, o.object_type, dict(o.metadata), dict(o.measurements))
                for o in self.objects[image.entry_id]]

    def image_data_files(self, image):
        return [self.path.parent / "data" / image.entry_id / "data.qpdata"]

    def write_objects(self, image, remove_keys, add: list[NewObject]):
        self.writes += 1
        kept = [o for o in self.objects[image.entry_id] if o.key not in set(remove_keys)]
        for new in add:
            stored = float32_roundtrip(new.geometry)
            kept.append(ProjectObject(f"obj-{next(self._ids)}", stored, new.class_name, new.object_type,
                                      review.stamp_geometry(new.metadata, stored), dict(new.measurements)))
        self.objects[image.entry_id] = kept
        (self.path.parent / "data" / image.entry_id / "data.qpdata").write_bytes(b"written")

    def add_user_object(self, image, geometry, class_name, metadata=None, object_type="annotation"):
        obj = ProjectObject(f"user-{next(self._ids)}", geometry, class_name, object_type, dict(metadata or {}), {})
        self.objects[image.entry_id].append(obj)
        return obj

    def update(self, image, key, **changes):
        for obj in self.objects[image.entry_id]:
            if obj.key == key:
                for name, value in changes.items():
                    if name == "metadata":
                        obj.metadata.update(value)
                    else:
                        setattr(obj, name, value)
                return obj
        raise KeyError(key)

    def close(self):
        pass
