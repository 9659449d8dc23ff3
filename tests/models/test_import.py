"""Seed checkpoints: both TU-Berlin layouts and deepflash2's dict import with identical outputs."""

import numpy as np
import pytest
import torch

from hubseg.cli import main as cli_main
from hubseg.errors import InvalidInputError
from hubseg.models.architectures import build_module
from hubseg.models.importers import import_checkpoint
from hubseg.models.tuberlin import TUBerlinUNet


# The kwargs the TU-Berlin seed stores in its "_full" checkpoint and passes straight to its UNet(**kwargs)
# (its deployed model.json): decoder is one of simple|noBN|deconv|scse, backbone is spelled Resnet34.
SEED_FULL_KWARGS = {"activation": None, "frozen_layers": 0, "n_classes": 2, "feature_layers": None,
                    "pretrained": "imagenet", "frozen_batchnorm": False, "objectness": False, "resize": 1024,
                    "decoder": "scse", "backbone": "Resnet34", "num_head_features": 32, "cat_features": True}


def _perturb_bn(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics so eval-mode outputs depend on them."""
    generator = torch.Generator().manual_seed(seed)
    for sub in module.modules():
        if isinstance(sub, torch.nn.BatchNorm2d):
            sub.running_mean.copy_(torch.randn(sub.num_features, generator=generator) * 0.1)
            sub.running_var.copy_(torch.rand(sub.num_features, generator=generator) + 0.5)


@pytest.fixture(scope="module")
def tuberlin_module():
    torch.manual_seed(0)
    module = TUBerlinUNet().eval()
    _perturb_bn(module, 0)
    return module


def test_tuberlin_key_layout_matches_the_published_pattern(tuberlin_module):
    keys = set(tuberlin_module.state_dict())
    for key in ("encoder1.0.0.weight", "encoder1.0.1.running_var", "encoder2.0.2.conv2.weight",
                "encoder3.0.downsample.0.weight", "encoder3.0.downsample.1.bias", "encoder4.5.bn2.weight",
                "encoder5.2.conv1.weight", "center.0.weight", "center.1.bias", "decoder5.block.0.0.weight",
                "decoder1.block.1.1.running_mean", "decoder3.block.2.channel_excitation.0.weight",
                "decoder3.block.2.channel_excitation.2.bias", "decoder2.block.2.spatial_se.0.weight",
                "neck.0.weight", "neck.1.weight", "mask_head.weight", "mask_head.bias"):
        assert key in keys, key
    assert "center.0.bias" not in keys and "neck.0.bias" not in keys
    assert tuberlin_module.state_dict()["neck.0.weight"].shape == (32, 496, 3, 3)
    assert tuberlin_module.state_dict()["decoder1.block.0.0.weight"].shape == (16, 96, 3, 3)
    assert tuberlin_module(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 16, 16)  # logits at 1/4


@pytest.mark.parametrize("layout", ["args", "full"])
def test_tuberlin_import_gives_identical_outputs(tmp_path, registry, tuberlin_module, layout):
    state = tuberlin_module.state_dict()
    if layout == "args":
        checkpoint = {"args": ("unet_scse", "Resnet34"), "kwargs": {"n_classes": 2}, "state_dict": state}
    else:
        checkpoint = {"kwargs": dict(SEED_FULL_KWARGS), "state_dict": state}
    path = tmp_path / f"hacking_kidney_{layout}.pth"
    torch.save(checkpoint, path)
    card = import_checkpoint(path, "tuberlin", registry, name=f"tuberlin-{layout}-v1")
    assert card.architecture["kind"] == "tuberlin" and card.pixel_size_um == 0.5 and card.tile_size == 1024
    assert card.architecture["checkpoint_layout"] == layout
    model = registry.load(card.name, device="cpu")
    assert set(model.module.state_dict()) == set(state)  # strict key match
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = tuberlin_module(x)
    torch.testing.assert_close(model.module(x), expected)
    # LoadedModel upsamples the 1/4-resolution logits to the input size
    assert model.logits(x).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("kwargs, message", [
    ({"decoder": "deconv"}, "decoder 'deconv' .*simple, noBN, deconv.* not supported.*only decoder 'scse'"),
    ({"decoder": "noBN"}, "decoder 'noBN'.*not supported"),
    ({"backbone": "Resnet50"}, "backbone 'Resnet50'; only Resnet34"),
    ({"num_filters": 32}, "num_filters=32; only num_filters=16"),
    ({"deep_supervision": True}, "deep_supervision=True"),
])
def test_tuberlin_full_layout_names_what_is_not_supported(tmp_path, registry, kwargs, message):
    path = tmp_path / "other_full.pth"
    torch.save({"kwargs": {**SEED_FULL_KWARGS, **kwargs}, "state_dict": {}}, path)
    with pytest.raises(InvalidInputError, match=message):
        import_checkpoint(path, "tuberlin", registry, name="other-v1")


def test_models_import_takes_data_dir_after_the_action(tmp_path, tuberlin_module):
    """Every subcommand takes --data-dir; for `models import` it may also follow the action."""
    path = tmp_path / "hacking_kidney_full.pth"
    torch.save({"kwargs": dict(SEED_FULL_KWARGS), "state_dict": tuberlin_module.state_dict()}, path)
    data = tmp_path / "data"
    assert cli_main(["models", "import", str(path), "--format", "tuberlin", "--name", "tub-full-v1",
                     "--data-dir", str(data)]) == 0
    assert (data / "models" / "tub-full-v1" / "card.json").is_file()


def test_deepflash2_import_with_numpy_stats(tmp_path, registry):
    torch.manual_seed(0)
    reference = build_module({"kind": "smp", "arch": "Unet", "encoder": "efficientnet-b2", "classes": 2}).eval()
    _perturb_bn(reference, 1)
    mean = np.array([0.70, 0.55, 0.75], np.float32)
    std = np.array([0.15, 0.20, 0.12], np.float32)
    path = tmp_path / "deepflash2_model.pth"
    torch.save({"model": reference.state_dict(), "stats": (mean, std)}, path)
    assert cli_main(["models", "--data-dir", str(registry.data_dir), "import", str(path), "--format", "deepflash2",
                     "--name", "df2-kidney-v1"]) == 0
    model = registry.load("df2-kidney-v1", device="cpu")
    assert model.card.pixel_size_um == 1.5 and model.card.tile_size == 512
    np.testing.assert_allclose(model.card.normalization["mean"], mean, rtol=1e-6)
    assert set(model.module.state_dict()) == set(reference.state_dict())
    tiles = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    x = model.preprocess(tiles)
    manual = (torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, manual)
    with torch.no_grad():
        torch.testing.assert_close(model.logits(x), reference(manual))


def test_arbitrary_pickles_are_refused(tmp_path, registry):
    import argparse  # any class outside the weights-only allow-list stands for an arbitrary pickle

    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "stats": argparse.Namespace(a=1)}, path)
    with pytest.raises(InvalidInputError, match="weights-only"):
        import_checkpoint(path, "deepflash2", registry, name="evil-v1")


def test_wrong_layouts_are_explained(tmp_path, registry):
    path = tmp_path / "x.pth"
    torch.save({"weights": {}}, path)
    with pytest.raises(InvalidInputError, match="expected a dict with 'state_dict'"):
        import_checkpoint(path, "tuberlin", registry, name="x-v1")
    with pytest.raises(InvalidInputError, match="valid: deepflash2, tuberlin"):
        import_checkpoint(path, "keras", registry, name="x-v1")
