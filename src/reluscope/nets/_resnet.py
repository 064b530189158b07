"""Residual networks for 32×32 images: ResNet-20 (He et al. 2016, §4.2) and ResNet-18
in the usual layout adapted to CIFAR (3×3 stem, no max-pool), or in the ImageNet layout
for 224×224 images (`imagenet_stem=True`: 7×7 stride-2 stem and max-pool).

Module paths are the ones researchers know: `stem.conv`, `stage2.0.conv1`,
`stage2.0.shortcut.conv`, `fc`; every block is `relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))`.
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers and a shortcut: identity, or a strided 1×1 conv–BN where
    the shape changes (option B of He et al.)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module("conv", nn.Conv2d(c_in, c_out, 1, stride, bias=False))
            self.shortcut.add_module("bn", nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv–BN–ReLU, stages of `BasicBlock`s, global average pool, linear head."""

    def __init__(self, blocks: list[int], widths: list[int], in_channels: int = 3, classes: int = 10,
                 imagenet_stem: bool = False):
        super().__init__()
        self.stem = nn.Sequential()
        if imagenet_stem:  # 7×7 stride-2 conv and 3×3 stride-2 max-pool: 224×224 -> 56×56
            self.stem.add_module("conv", nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False))
        else:
            self.stem.add_module("conv", nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(widths[0]))
        self.stem.add_module("relu", nn.ReLU())
        if imagenet_stem:
            self.stem.add_module("maxpool", nn.MaxPool2d(3, 2, 1))
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths), start=1):
            stage = nn.Sequential(*[BasicBlock(c if j == 0 else w, w, 2 if (j == 0 and i > 1) else 1)
                                    for j in range(n)])
            self.add_module(f"stage{i}", stage)
            c = w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)
        self.stages = len(blocks)

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, self.stages + 1):
            x = getattr(self, f"stage{i}")(x)
        x = self.pool(x)
        return self.fc(x.view(x.size(0), -1))


def resnet20(in_channels: int = 3, classes: int = 10) -> ResNet:
    """ResNet-20 for CIFAR: 3 stages of 3 blocks, 16/32/64 channels (0.27 M parameters).

    >>> sum(p.numel() for p in resnet20().parameters())
    272474
    """
    return ResNet([3, 3, 3], [16, 32, 64], in_channels, classes)


def resnet18(in_channels: int = 3, classes: int = 10, imagenet_stem: bool = False) -> ResNet:
    """ResNet-18 adapted to 32×32 inputs: 4 stages of 2 blocks, 64–512 channels (11.2 M).

    `imagenet_stem=True`: the ImageNet layout of He et al. (7×7 stride-2 stem conv and a 3×3
    stride-2 max-pool), for 224×224 inputs: the stages see 56, 28, 14 and 7 pixels a side
    (the arch spec `resnet18_imagenet`).

    >>> import torch
    >>> resnet18(imagenet_stem=True, classes=1000)(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
    """
    return ResNet([2, 2, 2, 2], [64, 128, 256, 512], in_channels, classes, imagenet_stem)


def resnet18_imagenet(in_channels: int = 3, classes: int = 10) -> ResNet:
    """`resnet18(imagenet_stem=True)`: ResNet-18 in its ImageNet layout for 224×224 inputs."""
    return resnet18(in_channels, classes, imagenet_stem=True)
