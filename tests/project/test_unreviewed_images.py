"""``hubseg adapt --project``: which project images count as unreviewed, on the in-memory store."""

from __future__ import annotations

from shapely.geometry import box

from hubseg.project import review
from hubseg.project.store import ImageRef, NewObject
from hubseg.training.selftrain import unreviewed_images

from tests.support.fakes import MemoryProjectStore


def test_only_unreviewed_readable_images_are_used(tmp_path):
    names = ("fresh.tif", "pending.tif", "accepted.tif", "drawn.tif", "gone.tif")
    for name in names[:4]:
        (tmp_path / name).write_bytes(b"x")
    images = [ImageRef(name, str(i), (tmp_path / name).as_uri(), 100, 100, 0.5 if i else None)
              for i, name in enumerate(names)]
    store = MemoryProjectStore(tmp_path / "proj", images)
    proposal = NewObject(box(1, 1, 20, 20), "Glomerulus", metadata={review.META_MODEL: "m-v1", review.META_REVIEW: "pending"},
                         measurements={"hubseg energy": 1.0})
    store.write_objects(images[1], [], [proposal])  # pending proposals only: not reviewed yet
    store.write_objects(images[2], [], [proposal])
    key = store.read_objects(images[2])[0].key
    store.update(images[2], key, metadata={review.META_MODEL: "m-v1", review.META_REVIEW: "accepted"})
    store.add_user_object(images[3], box(5, 5, 30, 30), "Glomerulus")  # the user drew a glomerulus
    assert unreviewed_images(store) == [(tmp_path / "fresh.tif", None), (tmp_path / "pending.tif", 0.5)]
