"""The fine-tune recipe for few corrections: sampling, epochs from the data, forgetting protection."""

import numpy as np
import pytest
import torch

from hubseg.models.testing import make_tiny_model
from hubseg.training import recipe
from hubseg.training.augment import IGNORE_INDEX
from hubseg.training.recipe import auto_epochs, parameter_groups
from hubseg.training.sources import ImageFolderSource, TrainingImage
from hubseg.training.trainer import TileSampler, fit

from tests.support.training import tiny_config


def test_every_correction_and_rejection_is_centred_each_epoch_and_background_comes_from_reviewed_pixels():
    label = np.full((200, 300), IGNORE_INDEX, np.uint8)
    label[:, :150] = 0  # the reviewed region: left half
    label[40:80, 40:80] = 1
    image = TrainingImage(name="t", label=label, pixel_size_um=2.0, rgb=np.zeros((200, 300, 3), np.uint8),
                          positives=[(60.0, 60.0), (100.0, 150.0)], negatives=[(120.0, 30.0)])
    sampler = TileSampler([image], tiny_config(jitter=0.0, random_tiles=2.0))
    for epoch in (1, 2, 3):
        samples = sampler.epoch(epoch)
        centres = [(x, y) for _, x, y in samples]
        for point in image.positives + image.negatives:
            assert point in centres  # every object, every epoch
        random = [c for c in centres if c not in image.positives + image.negatives]
        assert len(random) == 6
        assert all(label[int(y), int(x)] != IGNORE_INDEX for x, y in random)  # never outside the reviewed region


def test_epochs_follow_the_amount_of_data(image_folder, registry, monkeypatch):
    assert auto_epochs(100) == 40 and auto_epochs(160) == 30 and auto_epochs(10_000) == 8 and auto_epochs(0) == 8
    monkeypatch.setattr(recipe, "AUTO_TARGET_TILES", 30)
    monkeypatch.setattr(recipe, "AUTO_MIN_EPOCHS", 1)
    from hubseg.training import train

    messages = []
    card = train(tiny_config(epochs=None, val_fraction=0.0), [ImageFolderSource(image_folder, 1.0)], registry,
                 progress=lambda d, t, m: messages.append(m))
    tiles = sum(1 for m in messages if m.startswith("epoch"))
    assert card.provenance["epochs_auto"] is True and card.provenance["epochs"] == tiles >= 1
    assert all("ETA " in m for m in messages if m.startswith("epoch"))
    assert messages[[m.startswith("epoch") for m in messages].index(True) + tiles - 1].endswith("ETA 0:00")


def _fine_tune(registry, image_folder, **overrides):
    make_tiny_model(registry, name="base-v1", pixel_size_um=2.0)
    base = registry.load("base-v1", device="cpu")
    images = ImageFolderSource(image_folder, 1.0).load(2.0)
    before = {k: v.clone() for k, v in base.module.state_dict().items()}
    config = tiny_config(base_model="base-v1", epochs=2, val_fraction=0.0, **overrides)
    result = fit(config, images, [], base.module.train(), base.card)
    return before, result.state_dict


def test_frozen_batchnorm_keeps_the_base_statistics(image_folder, registry):
    before, after = _fine_tune(registry, image_folder, freeze_bn=True)
    stats = [k for k in before if k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith(".weight"))  # still learning
    _, plain = _fine_tune(registry.__class__(registry.data_dir / "other", shipped_dir=registry.shipped_dir),
                          image_folder)
    assert any(not torch.equal(before[k], plain[k]) for k in stats)


def test_lower_encoder_learning_rate(image_folder, registry):
    make_tiny_model(registry, name="m-v1", pixel_size_um=2.0)
    module = registry.load("m-v1", device="cpu").module
    groups, peaks = parameter_groups(module, 1e-3, 0.1)
    assert peaks == [pytest.approx(1e-4), 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))
    before, slow = _fine_tune(registry, image_folder, encoder_lr_factor=1e-4)
    _, fast = _fine_tune(registry.__class__(registry.data_dir / "other", shipped_dir=registry.shipped_dir), image_folder)

    def moved(state, prefix):
        return sum(float((state[k].float() - before[k].float()).abs().sum()) for k in before
                   if k.startswith(prefix) and before[k].is_floating_point() and "running" not in k)

    assert moved(slow, "encoder.") < 0.05 * moved(fast, "encoder.")
    assert moved(slow, "decoder.") > 0


def test_weight_average_is_what_is_kept(image_folder, registry):
    before, averaged = _fine_tune(registry, image_folder, ema_decay=0.5)
    _, raw = _fine_tune(registry.__class__(registry.data_dir / "other", shipped_dir=registry.shipped_dir), image_folder)
    weights = [k for k in before if k.endswith(".weight") and before[k].is_floating_point()]
    # same seed and data: the EMA run's kept weights lie between the base and the raw run's weights
    assert any(not torch.equal(averaged[k], raw[k]) for k in weights)
    assert "n_averaged" not in " ".join(averaged)
