"""Conv operator singular values against the SVD of the dense operator matrix."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reluscope import nets
from reluscope.errors import ShapeError
from reluscope.spectrum import circular_conv_singular_values, conv_singular_values


def _dense_circular(kernel, size, stride, dilation, groups):
    """The circular conv as a dense matrix, built column by column from F.pad(circular)."""
    c_in = kernel.shape[1] * groups
    n = c_in * size * size
    eye = torch.eye(n, dtype=torch.float64).reshape(n, c_in, size, size)
    total = dilation * (kernel.shape[-1] - 1)
    lo, hi = total // 2, total - total // 2
    x = F.pad(eye, (lo, hi, lo, hi), mode="circular")
    return F.conv2d(x, kernel, stride=stride, dilation=dilation, groups=groups).reshape(n, -1).T


@pytest.mark.parametrize("c_out,c_in,k,size,stride,dilation,groups", [
    (4, 3, 3, 6, 1, 1, 1), (4, 2, 3, 8, 2, 1, 1), (6, 4, 3, 6, 1, 2, 2), (3, 5, 5, 8, 2, 1, 1),
    (2, 2, 2, 6, 1, 1, 1), (8, 3, 1, 4, 1, 1, 1)])
def test_fft_method_equals_dense_circular_svd(c_out, c_in, k, size, stride, dilation, groups):
    torch.manual_seed(c_out * 100 + k)
    kernel = torch.randn(c_out, c_in // groups, k, k, dtype=torch.float64)
    ref = torch.linalg.svdvals(_dense_circular(kernel, size, stride, dilation, groups)).numpy()
    got = circular_conv_singular_values(kernel, (size, size), stride, dilation, groups)
    assert got.shape == ref.shape
    assert np.allclose(got, ref, atol=1e-4 * ref[0])


def _conv_layer(conv, size):
    net = nets.load(nn.Sequential(conv, nn.ReLU()), input_shape=(conv.in_channels, size, size))
    return net.layers[0]


def test_circular_padding_module_uses_exact_fft():
    # nets.load folds only zero-padded convs, so describe the layer directly (duck typing).
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, padding_mode="circular")
    layer = SimpleNamespace(name="c", kind="conv2d", module=conv, in_shape=(3, 6, 6), out_shape=(5, 6, 6),
                            weight=conv.weight, conv_args=dict(stride=(1, 1), padding=(1, 1),
                                                               dilation=(1, 1), groups=1))
    spec = conv_singular_values(layer)
    assert spec.method == "fft-circular" and spec.exact
    ref = torch.linalg.svdvals(_dense_circular(conv.weight.detach().double(), 6, 1, 1, 1)).numpy()
    assert np.allclose(spec.values, ref, atol=1e-4 * ref[0])


@pytest.mark.parametrize("stride", [1, 2])
def test_zero_padding_small_is_exact_dense(stride):
    torch.manual_seed(stride)
    conv = nn.Conv2d(2, 4, 3, stride=stride, padding=1)
    layer = _conv_layer(conv, 6)
    spec = conv_singular_values(layer)
    ref = torch.linalg.svdvals(layer.dense_matrix().double()).numpy()
    assert spec.method == "dense" and spec.exact
    assert np.allclose(spec.values, ref, atol=1e-4 * ref[0])


def test_zero_padding_large_falls_back_to_circular_approximation():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    layer = _conv_layer(conv, 8)
    approx = conv_singular_values(layer, max_dense=100)
    exact = conv_singular_values(layer)
    assert approx.method == "fft-circular-approx" and not approx.exact
    # border effects only: the operator norms agree closely on an 8x8 input
    assert approx.norm == pytest.approx(exact.norm, rel=0.15)


def test_errors():
    with pytest.raises(ShapeError):
        circular_conv_singular_values(torch.randn(2, 2, 3, 3), (5, 5), stride=2)
    with pytest.raises(ShapeError):
        circular_conv_singular_values(torch.randn(2, 2, 7, 7), (4, 4))
    valid = _conv_layer(nn.Conv2d(2, 2, 3), 8)  # no padding: not size-preserving
    with pytest.raises(ShapeError):
        conv_singular_values(valid, max_dense=10)
