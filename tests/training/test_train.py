import json

import numpy as np
import pytest
import tifffile

from hubseg.errors import Cancelled, InvalidInputError
from hubseg.training import train
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.sources import HubmapSource, ImageFolderSource, LabelSetSource

from tests.support.training import synthetic_tile, tiny_config, write_image_folder


def test_training_registers_a_new_version_with_card(image_folder, registry):
    calls = []
    records = []
    card = train(
        tiny_config(),
        [ImageFolderSource(image_folder, pixel_size_um=1.0)],
        registry,
        progress=lambda done, total, message: calls.append((done, total, message)),
        epoch_callback=records.append,
    )
    assert card.name == "synthetic-v1" and card.version == 1
    epochs = [c for c in calls if c[2].startswith("epoch")]
    assert [c[:2] for c in epochs] == [(1, 2), (2, 2)]
    assert "loss" in epochs[-1][2] and "val dice" in epochs[-1][2]
    # after the epochs: calibration, and the last message says how the gate was calibrated
    assert calls[-1][:2] == (2, 2) and calls[-1][2].startswith("calibration:")
    assert calls[-1][2] == card.metrics["calibration"]["message"]
    assert records[-1]["validation"]["f1"] >= 0.0 and records[-1]["loss"] > 0
    validation = card.metrics["validation"]
    assert set(validation) >= {"dice", "precision", "recall", "f1", "best_epoch", "image_names"}
    assert card.pixel_size_um == 2.0 and card.architecture["decoder_attention_type"] == "scse"
    provenance = card.provenance
    assert provenance["seed"] == 0 and provenance["iterations"] > 0 and provenance["init"] == "random"
    assert provenance["data"][0]["kind"] == "image-folder"
    loaded = registry.load("synthetic-v1", device="cpu")
    assert loaded.card.weights_sha256 == card.weights_sha256

    # fine-tuning writes v2 and leaves v1 untouched
    v1_bytes = (registry.path("synthetic-v1") / "weights.safetensors").read_bytes()
    tuned = train(tiny_config(base_model="synthetic-v1", epochs=1, family=None),
                  [ImageFolderSource(image_folder, 1.0)], registry)
    assert tuned.name == "synthetic-v2"
    assert tuned.provenance["base_model"] == "synthetic-v1"
    assert tuned.pixel_size_um == 2.0 and tuned.tile_size == 64
    assert (registry.path("synthetic-v1") / "weights.safetensors").read_bytes() == v1_bytes
    assert [c.name for c in registry.list()] == ["synthetic-v1", "synthetic-v2"]


def test_cancel_registers_nothing(image_folder, registry):
    with pytest.raises(Cancelled):
        train(tiny_config(), [ImageFolderSource(image_folder, 1.0)], registry, should_cancel=lambda: True)
    assert registry.list() == []


def test_training_needs_objects(tmp_path, registry):
    folder = write_image_folder(tmp_path / "empty", count=2)
    for mask in (folder / "masks").iterdir():
        from PIL import Image

        Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(mask)
    with pytest.raises(InvalidInputError, match="no glomeruli"):
        train(tiny_config(val_fraction=0.0), [ImageFolderSource(folder, 1.0)], registry)


def _square(x, y, side):
    return [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]


def test_label_set_source_and_training(tmp_path, registry):
    rng = np.random.default_rng(3)
    rgb, _ = synthetic_tile(rng, size=256, disks=0)
    rgb[40:80, 40:80] = (120, 60, 140)  # positive (annotated)
    rgb[150:190, 40:80] = (120, 60, 140)  # rejected by the reviewer
    rgb[40:80, 180:220] = (120, 60, 140)  # outside the reviewed region: unknown
    image = tmp_path / "slide.tif"
    tifffile.imwrite(image, rgb)
    feature = lambda coords, name: {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
                                    "properties": {"classification": {"name": name}}}
    labelset = {
        "format": "hubseg-labelset/1",
        "image": {"path": "slide.tif"},  # relative to the label-set file
        "pixel_size_um": 1.0,
        "regions": [{"type": "Polygon", "coordinates": _square(0, 0, 128)},
                    {"type": "Polygon", "coordinates": _square(0, 128, 128)}],
        "features": {"type": "FeatureCollection", "features": [
            feature(_square(40, 40, 40), "Glomerulus"), feature(_square(150 - 110, 150, 40), "Rejected")]},
        "source": "qupath",
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labelset))
    source = LabelSetSource(path)
    [image_data] = source.load(model_pixel_size_um=2.0)
    label = image_data.label
    assert image_data.downsample == pytest.approx(2.0)
    ox, oy = image_data.origin

    def at(x, y):  # level-0 → model px
        return label[int((y - oy) / 2), int((x - ox) / 2)]

    assert at(60, 60) == 1  # annotated glomerulus
    assert at(60, 170) == 0  # rejected = explicit negative
    assert at(100, 20) == 0  # reviewed, unannotated = background
    assert at(200, 60) == IGNORE_INDEX  # outside the regions
    assert len(image_data.positives) == 1 and len(image_data.negatives) == 1
    card = train(tiny_config(epochs=1, val_fraction=0.0, family="fromlabels"), [source], registry)
    assert card.name == "fromlabels-v1"
    assert card.metrics["validation"] is None and card.energy_gate is None
    # never silently: the card says there was nothing to calibrate on, and why
    assert card.metrics["calibration"]["method"] == "none"
    assert "no base model" in card.metrics["calibration"]["reason"]
    assert card.provenance["data"][0]["kind"] == "label-set" and card.provenance["data"][0]["negatives"] == 1


def test_hubmap_layout(tmp_path):
    from hubseg.metrics import rle_encode

    rgb, mask = synthetic_tile(np.random.default_rng(5), size=128)
    (tmp_path / "train").mkdir()
    tifffile.imwrite(tmp_path / "train" / "abc123.tiff", rgb)
    (tmp_path / "train.csv").write_text(f"id,encoding\nabc123,{rle_encode(mask)}\n")
    [image] = HubmapSource(tmp_path, pixel_size_um=1.0).load(model_pixel_size_um=2.0)
    assert image.shape == (64, 64) and image.rgb is None  # read lazily from the TIFF
    assert abs(image.label.mean() - mask.mean()) < 0.03
    assert len(image.positives) >= 1
    window_rgb, window_label = image.read(-8, -8, 32, 32)
    assert window_rgb.shape == (32, 32, 3) and (window_label[:8] == IGNORE_INDEX).all()


def test_aidpath_two_tiles(shared_data, registry):
    names = sorted(p.stem for p in (shared_data / "images").iterdir())[:2]
    source = ImageFolderSource(shared_data, pixel_size_um=0.4942, names=names)
    card = train(tiny_config(pixel_size_um=1.5, epochs=1, val_fraction=0.5, tile_size=128, train_tile_size=128,
                             family="aidpath-tiny"), [source], registry)
    assert card.name == "aidpath-tiny-v1"
    assert card.metrics["validation"]["image_names"] in ([names[0]], [names[1]])
    assert "CC BY 4.0" in card.provenance["data"][0]["readme"]
