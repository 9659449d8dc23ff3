"""The TU-Berlin HuBMAP glomeruli U-Net ("unet_scse" with a ResNet34 backbone), rebuilt from its public
description so its checkpoints run here (it is not smp's U-Net).

ResNet34 (torchvision, no weights downloaded) as ``encoder1`` = (conv1, bn1, relu) + maxpool (1/4, 64 ch),
``encoder2..5`` = layer1..4; ``center`` Conv3×3+BN+ReLU; decoders ``decoder5..1`` each concat(previous,
skip) → 2× ConvBnReLU → SCSE → bilinear ×2 (decoder2 and decoder1 stay at 1/4); hypercolumn of all
decoder outputs at decoder1 size (496 ch) → Dropout2d(0.1) → ``neck`` Conv3×3+BN+ReLU → ``mask_head``
Conv3×3. Logits come out at 1/4 of the input (``LoadedModel`` upsamples them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DECODER_WIDTHS = {  # name: (input channels after concat, output channels, upsample ×2)
    "decoder5": (1024, 256, True),
    "decoder4": (512, 128, True),
    "decoder3": (256, 64, True),
    "decoder2": (128, 32, False),
    "decoder1": (96, 16, False),
}


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-excitation: ``x·cSE(x) + x·sSE(x)``."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.channel_excitation = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )
        self.spatial_se = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        channel = self.channel_excitation(F.adaptive_avg_pool2d(x, 1).view(n, c)).view(n, c, 1, 1)
        return x * channel + x * self.spatial_se(x)


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, upsample: bool):
        super().__init__()
        self.block = nn.Sequential(
            conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels), SCSE(out_channels)
        )
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return x


class TUBerlinUNet(nn.Module):
    def __init__(self, n_classes: int = 2, num_head_features: int = 32):
        super().__init__()
        from torchvision.models import resnet34

        resnet = resnet34(weights=None)
        self.encoder1 = nn.Sequential(nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu), resnet.maxpool)
        self.encoder2 = nn.Sequential(resnet.layer1)
        self.encoder3 = resnet.layer2
        self.encoder4 = resnet.layer3
        self.encoder5 = resnet.layer4
        self.center = nn.Sequential(
            nn.Conv2d(512, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512), nn.ReLU(inplace=True)
        )
        for name, (cin, cout, up) in DECODER_WIDTHS.items():
            setattr(self, name, DecoderBlock(cin, cout, up))
        hypercolumn = sum(cout for _, cout, _ in DECODER_WIDTHS.values())  # 496
        self.dropout = nn.Dropout2d(0.1)
        self.neck = nn.Sequential(
            nn.Conv2d(hypercolumn, num_head_features, 3, padding=1, bias=False),
            nn.BatchNorm2d(num_head_features),
            nn.ReLU(inplace=True),
        )
        self.mask_head = nn.Conv2d(num_head_features, n_classes, 3, padding=1)

    @staticmethod
    def _cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != skip.shape[-2:]:  # odd sizes: align to the skip connection
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.encoder1(x)  # 1/4, 64
        e2 = self.encoder2(e1)  # 1/4, 64
        e3 = self.encoder3(e2)  # 1/8, 128
        e4 = self.encoder4(e3)  # 1/16, 256
        e5 = self.encoder5(e4)  # 1/32, 512
        c = self.center(e5)
        d5 = self.decoder5(self._cat(c, e5))  # → 1/16
        d4 = self.decoder4(self._cat(d5, e4))  # → 1/8
        d3 = self.decoder3(self._cat(d4, e3))  # → 1/4
        d2 = self.decoder2(self._cat(d3, e2))  # 1/4
        d1 = self.decoder1(self._cat(d2, e1))  # 1/4
        size = d1.shape[-2:]
        hyper = torch.cat(
            [F.interpolate(d, size=size, mode="bilinear", align_corners=False) if d.shape[-2:] != size else d
             for d in (d5, d4, d3, d2, d1)],
            dim=1,
        )
        return self.mask_head(self.neck(self.dropout(hyper)))
