"""Small models of the shapes researchers train, shared by the graph tests of every
analysis: a residual net with BN and a strided shortcut, a DenseNet-style concatenation
net, a GELU MLP, a torchvision-style block (one ReLU module called twice, `+=`), and a
weighted residual. Each builder returns `(model in eval mode, input_shape)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters in every batch norm."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


class TinyResNet(nn.Module):
    """conv–BN–ReLU stem, one identity block, one block with a strided 1×1 shortcut,
    AdaptiveAvgPool2d and `x.view(x.size(0), -1)` in forward."""

    def __init__(self, c: int = 4, classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.b1_conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1_bn1 = nn.BatchNorm2d(c)
        self.b1_conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1_bn2 = nn.BatchNorm2d(c)
        self.b2_conv1 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False)
        self.b2_bn1 = nn.BatchNorm2d(2 * c)
        self.b2_conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, bias=False)
        self.b2_bn2 = nn.BatchNorm2d(2 * c)
        self.b2_short = nn.Conv2d(c, 2 * c, 1, stride=2, bias=False)
        self.b2_short_bn = nn.BatchNorm2d(2 * c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        y = F.relu(self.b1_bn1(self.b1_conv1(x)))
        x = F.relu(self.b1_bn2(self.b1_conv2(y)) + x)
        y = F.relu(self.b2_bn1(self.b2_conv1(x)))
        x = F.relu(self.b2_bn2(self.b2_conv2(y)) + self.b2_short_bn(self.b2_short(x)))
        x = self.pool(x)
        return self.fc(x.view(x.size(0), -1))


class DenseCat(nn.Module):
    """DenseNet-style: each conv sees the concatenation of all earlier feature maps."""

    def __init__(self, growth: int = 3):
        super().__init__()
        self.c1 = nn.Conv2d(2, growth, 3, padding=1)
        self.c2 = nn.Conv2d(2 + growth, growth, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear((2 + 2 * growth) * 3 * 3, 4)

    def forward(self, x):
        x = torch.cat([x, F.relu(self.c1(x))], dim=1)
        x = torch.cat([x, F.relu(self.c2(x))], dim=1)
        return self.fc(torch.flatten(self.pool(x), 1))


class SharedReluBlock(nn.Module):
    """torchvision's BasicBlock habit: one ReLU module called twice, `out += identity`,
    a batch norm after a ReLU and before a padded conv."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.bn = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 5 * 5, 3)

    def forward(self, x):
        identity = x
        out = self.conv2(self.bn(self.relu(self.conv1(x))))
        out += identity
        out = self.relu(out)
        return self.fc(out.flatten(1))


class WeightedResidualMLP(nn.Module):
    """`x + 0.5 * f(x)` and `x - g(x)` on vectors (scalar-weighted residual adds)."""

    def __init__(self, d: int = 6):
        super().__init__()
        self.f = nn.Linear(d, d)
        self.g = nn.Linear(d, d)
        self.head = nn.Linear(d, 2)

    def forward(self, x):
        x = torch.relu(x + 0.5 * self.f(x))
        x = F.relu(torch.sub(x, self.g(x)))
        return self.head(x)


def tiny_resnet():
    torch.manual_seed(0)
    return randomise_bn(TinyResNet()).eval(), (1, 8, 8)


def dense_cat():
    torch.manual_seed(1)
    return DenseCat().eval(), (2, 6, 6)


def gelu_mlp():
    torch.manual_seed(2)
    return nn.Sequential(nn.Flatten(), nn.Linear(10, 16), nn.GELU(), nn.Linear(16, 12), nn.Tanh(),
                         nn.Linear(12, 3)).eval(), (10,)


def shared_relu_block():
    torch.manual_seed(3)
    return randomise_bn(SharedReluBlock()).eval(), (2, 5, 5)


def weighted_residual():
    torch.manual_seed(4)
    return WeightedResidualMLP().eval(), (6,)


ALL = {"tiny_resnet": tiny_resnet, "dense_cat": dense_cat, "gelu_mlp": gelu_mlp,
       "shared_relu_block": shared_relu_block, "weighted_residual": weighted_residual}
