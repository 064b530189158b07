"""Locally connected 2-D layer: a convolution whose filters differ at every position."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class LocallyConnected2d(nn.Module):
    """Unshared-weight convolution (no padding) over a `(C, H, W)` input.

    A 1-D input of length L is the case `in_size=(1, L)`, `kernel_size=(1, k)`.

    Arguments:
        in_channels: channels of the input.
        out_channels: channels of the output.
        in_size: spatial size `(H, W)` of the input.
        kernel_size: of the receptive fields.
        stride: of the receptive fields.

    Shapes: weight `(oh, ow, out_channels, in_channels * kh * kw)`, bias
    `(out_channels, oh, ow)`; output `(B, out_channels, oh, ow)`.
    """

    def __init__(self, in_channels: int, out_channels: int, in_size, kernel_size, stride=1,
                 bias: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.kernel_size, self.stride = _pair(in_size), _pair(kernel_size), _pair(stride)
        (h, w), (kh, kw), (sh, sw) = self.in_size, self.kernel_size, self.stride
        if kh > h or kw > w:
            raise ValueError(f"kernel {self.kernel_size} larger than input {self.in_size}")
        self.out_size = ((h - kh) // sh + 1, (w - kw) // sw + 1)
        oh, ow = self.out_size
        fan_in = in_channels * kh * kw
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(oh, ow, out_channels, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, oh, ow).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        oh, ow = self.out_size
        # patches: (B, C*kh*kw, oh*ow) -> (B, oh, ow, C*kh*kw)
        patches = F.unfold(x, self.kernel_size, stride=self.stride)
        patches = patches.transpose(1, 2).reshape(x.shape[0], oh, ow, -1)
        out = torch.einsum("bhwk,hwok->bohw", patches, self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}")
