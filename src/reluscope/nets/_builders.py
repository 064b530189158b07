"""Model builders: MLPs, the CIFAR-10 CNN of Behrmann et al., locally connected nets,
CIFAR ResNets, and the `arch` spec strings the CLI uses (`mlp:64-256-256-10`,
`cifar_cnn`, `resnet20`, `resnet18`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ._locally import LocallyConnected2d
from ._resnet import resnet18, resnet18_imagenet, resnet20

RESNETS = {"resnet20": resnet20, "resnet18": resnet18, "resnet18_imagenet": resnet18_imagenet}


def mlp(widths: Sequence[int], dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """A ReLU MLP `widths[0] -> ... -> widths[-1]` (no activation on the output).

    The input is flattened first, so images can be fed directly.

    >>> mlp([784, 256, 10])
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=784, out_features=256, bias=True)
      (2): ReLU()
      (3): Linear(in_features=256, out_features=10, bias=True)
    )
    """
    widths = list(widths)
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise ConfigError(f"MLP widths {widths} must be at least two positive integers")
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def cifar_cnn(in_channels: int = 3, image_size: int = 32, classes: int = 10,
              dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """The small CNN of Behrmann et al. (2018) for CIFAR-10.

    conv3x3 s1 32 -> conv3x3 s2 64 -> conv3x3 s1 64 -> conv3x3 s1 32 -> conv3x3 s1 32
    -> conv3x3 s2 64 -> dense 512 -> dense `classes`, ReLU after each but the last;
    padding 1 keeps sizes, so a 32x32 input reaches 64x8x8 before the dense layers.
    """
    plan = [(32, 1), (64, 2), (64, 1), (32, 1), (32, 1), (64, 2)]
    layers: list[nn.Module] = []
    c, size = in_channels, image_size
    for out, stride in plan:
        layers.append(nn.Conv2d(c, out, 3, stride=stride, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        c, size = out, (size + 2 - 3) // stride + 1
    layers += [nn.Flatten(), nn.Linear(c * size * size, 512), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(512, classes))
    return nn.Sequential(*layers)


def alexnet_cifar(in_channels: int = 3, image_size: int = 32, classes: int = 10,
                  dropout: float = 0.0) -> nn.Sequential:
    """A small AlexNet for CIFAR-10 (the net of the TensorFlow CIFAR-10 tutorial, Zhang et al. 2017's
    "small AlexNet"; Arora et al. 2015 analysed AlexNet): conv5x5 64 -> max-pool 3 s2 -> conv5x5 64
    -> max-pool 3 s2 -> dense 384 -> dense 192 -> dense `classes`, ReLU after each but the last
    (no local response normalisation). A 32x32 input reaches 64x8x8 before the dense layers.
    """
    layers: list[nn.Module] = []
    c, size = in_channels, image_size
    for _ in range(2):
        layers += [nn.Conv2d(c, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]
        c, size = 64, (size - 1) // 2 + 1
    layers += [nn.Flatten(), nn.Linear(c * size * size, 384), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, classes)]
    return nn.Sequential(*layers)


def gaussian_init(model: nn.Module, std: float | None = None, seed: int | None = None) -> nn.Module:
    """Redraw every Linear/Conv weight of `model` (in place) from N(0, std^2), biases zero, as AlexNet
    (Krizhevsky et al. 2012, std 0.01). `std=None` matches PyTorch's default init per layer: the std
    `1 / sqrt(3 fan_in)` of its `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, so only the law's shape changes.
    Returns `model`.
    """
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                s = std if std is not None else 1.0 / math.sqrt(3 * fan_in)
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * s)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def locally_connected(in_shape: Sequence[int], channels: Sequence[int], kernel_size: int | tuple,
                      stride: int | tuple | None = None, classes: int | None = None,
                      batch_norm: bool = False) -> nn.Sequential:
    """A stack of locally connected ReLU layers over a `(C, H, W)` input.

    Each layer has receptive fields of `kernel_size` moved by `stride` (default: no
    overlap, stride = kernel). With `classes`, a final Linear head reads the top layer.
    """
    c, h, w = in_shape
    layers: list[nn.Module] = []
    for out in channels:
        lc = LocallyConnected2d(c, out, (h, w), kernel_size, stride or kernel_size)
        layers.append(lc)
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        c, (h, w) = out, lc.out_size
    if classes:
        layers += [nn.Flatten(), nn.Linear(c * h * w, classes)]
    return nn.Sequential(*layers)


def build(arch: str, input_shape: Sequence[int], classes: int, dropout: float = 0.0) -> nn.Module:
    """Build a model from a spec string.

    `mlp:256-256` gives hidden widths (input and output sizes come from the data);
    `mlp:64-256-256-10` spells them out and must match the data; `cifar_cnn` is the CNN
    of Behrmann et al. for `(C, H, W)` inputs; `alexnet_cifar` a small AlexNet; `resnet20` and
    `resnet18` are the CIFAR
    ResNets (any image size; global pooling before the head; no dropout); `resnet18_imagenet`
    is ResNet-18 with the ImageNet stem (7×7 stride 2, max-pool) for 224×224 inputs.
    """
    family, _, rest = arch.partition(":")
    n_in = math.prod(input_shape)
    if family == "mlp":
        try:
            widths = [int(w) for w in rest.split("-") if w]
        except ValueError:
            raise ConfigError(f"bad MLP spec '{arch}'; write e.g. mlp:256-256 or "
                              f"mlp:{n_in}-256-{classes}") from None
        if len(widths) >= 2 and widths[0] == n_in and widths[-1] == classes:
            return mlp(widths, dropout=dropout)
        return mlp([n_in, *widths, classes], dropout=dropout)
    if family in ("cifar_cnn", "cnn"):
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            raise ConfigError(f"cifar_cnn needs square image inputs (C, H, H), got {tuple(input_shape)}")
        return cifar_cnn(input_shape[0], input_shape[1], classes, dropout=dropout)
    if family == "alexnet_cifar":
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            raise ConfigError(f"alexnet_cifar needs square image inputs (C, H, H), got {tuple(input_shape)}")
        return alexnet_cifar(input_shape[0], input_shape[1], classes, dropout=dropout)
    if family in RESNETS:
        if len(input_shape) != 3:
            raise ConfigError(f"{family} needs image inputs (C, H, W), got {tuple(input_shape)}")
        return RESNETS[family](input_shape[0], classes)
    raise ConfigError(f"unknown architecture '{arch}'; use mlp:W1-W2-..., cifar_cnn, alexnet_cifar, "
                      "resnet20, resnet18 or resnet18_imagenet")
