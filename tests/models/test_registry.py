import numpy as np
import pytest
import torch

from hubseg.errors import ConflictError, InvalidInputError, NotFoundError
from hubseg.models import LoadedModel, ModelCard, resolve_device
from hubseg.models.architectures import ThresholdTestModule, build_module
from hubseg.models.registry import DEFAULT_MODEL_NAME, ModelRegistry
from hubseg.models.testing import TINY_ARCHITECTURE, make_threshold_model, make_tiny_model, tiny_module


def test_register_list_load_and_activate(registry):
    tiny = make_tiny_model(registry, pixel_size_um=2.0, tile_size=64)
    make_threshold_model(registry)
    assert [c.name for c in registry.list()] == ["threshold-test-v1", "tiny-test-v1"]
    assert registry.active_name() == DEFAULT_MODEL_NAME  # nothing activated yet: the shipped default
    registry.activate("tiny-test-v1")
    assert (registry.data_dir / "active_model").read_text().strip() == "tiny-test-v1"
    model = registry.load(device="cpu")  # None = active
    assert model.card.name == "tiny-test-v1" and model.card.pixel_size_um == 2.0
    assert len(tiny.weights_sha256) == 64 and tiny.created
    # fp16 on disk, fp32 in memory, identical to the seeded module up to fp16 rounding
    reference = tiny_module(0).state_dict()
    for key, value in model.module.state_dict().items():
        assert value.dtype == reference[key].dtype
        if value.is_floating_point():
            torch.testing.assert_close(value, reference[key].half().float())


def test_versions_are_never_overwritten(registry):
    make_tiny_model(registry, name="fam-v1")
    assert registry.next_version_name("fam") == "fam-v2"
    assert registry.next_version_name("fam-v1") == "fam-v2"
    with pytest.raises(ConflictError, match="never overwritten.*'fam-v2'"):
        make_tiny_model(registry, name="fam-v1")
    make_tiny_model(registry, name="fam-v2", seed=1)
    assert registry.next_version_name("fam") == "fam-v3"
    assert registry.next_version_name("other") == "other-v1"


def test_unknown_name_lists_valid_names(registry):
    make_tiny_model(registry)
    with pytest.raises(NotFoundError, match="unknown model 'nope'; valid names: tiny-test-v1"):
        registry.load("nope")
    with pytest.raises(NotFoundError, match="valid names: tiny-test-v1"):
        registry.activate("nope")


def test_load_by_folder_or_card_path(registry):
    make_tiny_model(registry)
    folder = registry.path("tiny-test-v1")
    assert registry.load(str(folder), device="cpu").card.name == "tiny-test-v1"
    assert registry.load(str(folder / "card.json"), device="cpu").card.name == "tiny-test-v1"


def test_sha_mismatch_is_an_error(registry):
    make_tiny_model(registry)
    weights = registry.path("tiny-test-v1") / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="corrupt or were replaced: sha256"):
        registry.load("tiny-test-v1")


def test_state_dict_must_fit_the_architecture(registry):
    card = ModelCard(name="bad-v1", architecture=dict(TINY_ARCHITECTURE))
    with pytest.raises(InvalidInputError, match="does not fit architecture"):
        registry.register(ThresholdTestModule().state_dict(), card)
    assert registry.list() == []


def test_shipped_models_cannot_be_shadowed(tmp_path):
    shipped = ModelRegistry(tmp_path / "a", shipped_dir=tmp_path / "unused")
    make_tiny_model(shipped, name="shipped-v1")
    registry = ModelRegistry(tmp_path / "b", shipped_dir=shipped.user_dir)
    assert registry.is_shipped("shipped-v1")
    with pytest.raises(ConflictError):
        make_tiny_model(registry, name="shipped-v1")


def test_unknown_architecture_lists_valid_kinds():
    with pytest.raises(InvalidInputError, match="valid: smp, test-threshold, tuberlin"):
        build_module({"kind": "keras"})
    with pytest.raises(InvalidInputError, match="valid: Unet"):
        build_module({"kind": "smp", "arch": "SegFormer9"})


def test_loaded_model_outputs():
    card = ModelCard(name="t-v1", architecture={"kind": "test-threshold"},
                     normalization={"mean": [0, 0, 0], "std": [1, 1, 1]})
    model = LoadedModel(card, ThresholdTestModule(scale=12.0), device="cpu")
    tiles = np.full((2, 50, 70, 3), 230, np.uint8)  # not a multiple of 32: padded and cropped back
    tiles[:, 10:30, 10:30] = 20
    x = model.preprocess(tiles)
    assert x.shape == (2, 3, 50, 70) and x.dtype == torch.float32
    logits = model.logits(x)
    assert logits.shape == (2, 2, 50, 70)
    probability = model.probability(logits)
    assert probability[0, 20, 20] > 0.99 and probability[0, 45, 60] < 0.01
    energy = model.negative_energy(logits)
    torch.testing.assert_close(energy, torch.logsumexp(logits, dim=1))
    # one-channel logits are read as [0, z]
    z = torch.randn(1, 1, 4, 4)
    torch.testing.assert_close(model.probability(z), torch.sigmoid(z[:, 0]))
    torch.testing.assert_close(model.negative_energy(z), torch.logaddexp(torch.zeros_like(z[:, 0]), z[:, 0]))
    torch.testing.assert_close(model.negative_energy(z, temperature=2.0),
                               2.0 * torch.logaddexp(torch.zeros_like(z[:, 0]), z[:, 0] / 2.0))


def test_coarse_outputs_are_upsampled():
    class Quarter(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(torch.cat([x[:, :1], -x[:, :1]], 1), 4)

    model = LoadedModel(ModelCard(name="q-v1"), Quarter(), device="cpu")
    assert model.logits(torch.zeros(1, 3, 64, 96)).shape == (1, 2, 64, 96)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(InvalidInputError, match="valid choices: auto, cpu, cuda, mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="no CUDA GPU"):
            resolve_device("cuda")
