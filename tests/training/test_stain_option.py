"""TrainConfig.stain_normalization: applied to training tiles, recorded in the card, inherited by fine-tunes."""

from __future__ import annotations

import numpy as np
import pytest

from hubseg.errors import InvalidInputError
from hubseg.training import train
from hubseg.training.sources import ImageFolderSource
from hubseg.training.trainer import TileSampler, split_images

from tests.support.training import tiny_config


def test_reinhard_training_registers_card_field_and_fine_tune_inherits(image_folder, registry):
    source = ImageFolderSource(image_folder, pixel_size_um=1.0)
    card = train(tiny_config(epochs=1, stain_normalization="reinhard"), [source], registry)
    assert card.stain_normalization == "reinhard"
    assert registry.card(card.name).stain_normalization == "reinhard"  # as stored in card.json
    assert card.provenance["config"]["stain_normalization"] == "reinhard"

    inherited = train(tiny_config(base_model=card.name, epochs=1, family=None), [source], registry)
    assert inherited.stain_normalization == "reinhard"
    switched_off = train(tiny_config(base_model=card.name, epochs=1, family=None, stain_normalization="none"),
                         [source], registry)
    assert switched_off.stain_normalization is None


def test_training_tiles_are_normalised_before_augmentation(image_folder):
    from hubseg.training.trainer import load_sources

    config = tiny_config(augmentation="none")
    images, _ = load_sources([ImageFolderSource(image_folder, pixel_size_um=1.0)], config.pixel_size_um)
    train_images, _ = split_images(images, config)
    plain = TileSampler(train_images, config)
    normalised = TileSampler(train_images, config, "reinhard")
    sample = plain.epoch(1)[0]
    plain_rgb, plain_mask = plain.read(sample)
    normalised_rgb, normalised_mask = normalised.read(sample)
    np.testing.assert_array_equal(plain_mask, normalised_mask)
    assert np.abs(plain_rgb.astype(int) - normalised_rgb.astype(int)).mean() > 1.0


def test_bad_value_lists_valid_ones():
    with pytest.raises(InvalidInputError) as error:
        tiny_config(stain_normalization="vahadane").validate()
    assert all(name in str(error.value) for name in ("none", "macenko", "reinhard"))


def test_cli_train_flag_reaches_the_config(image_folder, tmp_path, monkeypatch):
    from hubseg import cli
    import hubseg.training.selftrain  # noqa: F401  (binds the real train first: the fake must not leak into it)
    import hubseg.training.trainer as trainer

    seen = {}

    def fake_train(config, sources, registry, progress=None):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(trainer, "train", fake_train)
    args = cli.build_parser().parse_args(["train", str(image_folder), "--pixel-size", "1.0",
                                          "--data-dir", str(tmp_path / "data"), "--stain-normalization", "macenko"])
    with pytest.raises(SystemExit):
        args.func(args)
    assert seen["config"].stain_normalization == "macenko"
