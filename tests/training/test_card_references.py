"""Reference crops belong to the model that made them: a fine-tune starts without its base's."""

from __future__ import annotations

from hubseg.training import train
from hubseg.training.sources import ImageFolderSource

from tests.support.training import tiny_config


def test_a_fine_tune_does_not_list_its_base_models_reference_crops(image_folder, registry):
    import hashlib

    source = ImageFolderSource(image_folder, pixel_size_um=1.0)
    base = train(tiny_config(epochs=1, family="base"), [source], registry)
    folder = registry.path(base.name)
    (folder / "references").mkdir()
    (folder / "references" / "1.jpg").write_bytes(b"\xff\xd8crop")
    card = registry.card(base.name)
    card.references = [{"file": "references/1.jpg", "sha256": hashlib.sha256(b"\xff\xd8crop").hexdigest()}]
    card.save(folder)
    tuned = train(tiny_config(base_model=base.name, epochs=1, family=None), [source], registry)
    assert registry.card(tuned.name).references == [] and not (registry.path(tuned.name) / "references").exists()
