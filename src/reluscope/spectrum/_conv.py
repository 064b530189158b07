"""Singular values of a 2-D convolution as a linear operator on its input.

Circular padding (Sedghi, Gupta, Long 2019): the operator is block-circulant, so the 2-D
DFT block-diagonalises it. At input frequency `(u, v)` the block is the `c_out x c_in`
matrix `P(u, v) = sum_{a,b} K[:, :, a, b] exp(-2 pi i (a u / H + b v / W))`; the
operator's singular values are those of all `H W` blocks. With stride `s` the output
keeps every s-th position, which folds (aliases) the `s^2` input frequencies
`(u + j H/s, v + l W/s)` onto one output frequency: the block becomes the
`c_out x s^2 c_in` matrix `[P(u + j H/s, v + l W/s)]_{j,l} / s`. Exact, `O(H W)` small SVDs.

Zero padding is not block-circulant. `conv_singular_values` then computes the exact
singular values from the dense operator when it is small (`min(in, out) <= max_dense`),
and otherwise returns the circular-padding values as an approximation (they differ by a
perturbation supported on the border), saying which in `ConvSpectrum.method`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._display import Tabular
from ..errors import ShapeError
from ._blas import one_blas_thread

DEFAULT_MAX_DENSE = 2048


@dataclass(frozen=True)
class ConvSpectrum(Tabular):
    """Singular values of a conv layer's operator.

    Attributes:
        values: all singular values, descending (`min(in, out)` of them, zeros included).
        method: `fft-circular` (exact, circular padding), `dense` (exact SVD of the dense
            operator, any padding), or `fft-circular-approx` (zero padding approximated by
            circular padding; exact up to border effects).
        exact: whether `values` are the exact singular values of this layer's operator.
        input_size: the (H, W) the operator acts on.
    """

    values: np.ndarray
    method: str
    exact: bool
    input_size: tuple[int, int]

    @property
    def norm(self) -> float:
        """Operator 2-norm (the largest singular value)."""
        return float(self.values[0]) if self.values.size else float("nan")

    def to_dict(self, max_values: int = 4096) -> dict:
        return dict(method=self.method, exact=self.exact, input_size=list(self.input_size),
                    norm=self.norm, count=int(self.values.size),
                    values=self.values[:max_values].tolist())


def circular_conv_singular_values(kernel: torch.Tensor, input_size: tuple[int, int],
                                  stride: int | tuple[int, int] = 1,
                                  dilation: int | tuple[int, int] = 1, groups: int = 1) -> np.ndarray:
    """Singular values of the circular ("same", wrap-around) convolution by `kernel`.

    Arguments:
        kernel: `(c_out, c_in / groups, kh, kw)`, as in `torch.nn.Conv2d.weight`.
        input_size: `(H, W)` of the input; each must be divisible by the stride.
        stride: as in `torch.nn.functional.conv2d`.
        dilation: as in `torch.nn.functional.conv2d`.
        groups: as in `torch.nn.functional.conv2d`.

    Returns:
        All singular values, descending (float64).

    >>> k = torch.zeros(1, 1, 3, 3); k[0, 0, 1, 1] = 2.0  # 2 x identity
    >>> circular_conv_singular_values(k, (4, 4))[:3]
    array([2., 2., 2.])
    """
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    h, w = input_size
    if h % sh or w % sw:
        raise ShapeError(f"input size {input_size} is not divisible by the stride {(sh, sw)}; "
                         "the circular operator needs whole periods")
    k = kernel.detach().to(torch.float64).cpu()
    c_out, c_in_g, kh, kw = k.shape
    if (kh - 1) * dh >= h or (kw - 1) * dw >= w:
        raise ShapeError(f"kernel {kh}x{kw} (dilation {(dh, dw)}) does not fit in the input {input_size}")
    # Place the (dilated) taps on the H x W torus; the 2-D FFT gives P(u, v) for every frequency.
    torus = torch.zeros(c_out, c_in_g, h, w, dtype=torch.float64)
    torus[:, :, : (kh - 1) * dh + 1 : dh, : (kw - 1) * dw + 1 : dw] = k
    p = torch.fft.fft2(torus).numpy()  # (c_out, c_in_g, H, W)
    go = c_out // groups
    out = []
    for g in range(groups):
        pg = p[g * go:(g + 1) * go]  # (go, c_in_g, H, W)
        # Alias the s_h * s_w input frequencies that land on one output frequency.
        ho, wo = h // sh, w // sw
        pg = pg.reshape(go, c_in_g, sh, ho, sw, wo)  # u = j * ho + u'
        blocks = pg.transpose(3, 5, 0, 2, 4, 1).reshape(ho * wo, go, sh * sw * c_in_g) / math.sqrt(sh * sw)
        out.append(_batched_singular_values(blocks).reshape(-1))
    vals = np.concatenate(out)
    return np.sort(vals)[::-1].copy()


def _batched_singular_values(blocks: np.ndarray) -> np.ndarray:
    """Singular values of a batch of small complex matrices, from the Hermitian Gram matrix
    on the smaller side (numpy, one BLAS thread: 30x faster than torch's batched complex
    svdvals here; absolute error ~1e-15 of the largest value)."""
    if blocks.shape[1] > blocks.shape[2]:
        blocks = blocks.conj().transpose(0, 2, 1)
    with one_blas_thread():
        gram = blocks @ blocks.conj().transpose(0, 2, 1)
        ev = np.linalg.eigvalsh(gram)
    return np.sqrt(np.clip(ev, 0.0, None))


def conv_singular_values(layer, max_dense: int = DEFAULT_MAX_DENSE) -> ConvSpectrum:
    """Singular values of a `reluscope.nets.Layer` of kind `conv2d` as an operator.

    Circular padding: exact FFT method. Zero padding: exact dense SVD when
    `min(prod(in_shape), prod(out_shape)) <= max_dense`, else the circular approximation.

    Arguments:
        layer: a conv2d `Layer` (batch norm folded into its weight).
        max_dense: largest matrix side for the exact dense method.

    Returns:
        A `ConvSpectrum`.
    """
    if layer.kind != "conv2d":
        raise ShapeError(f"layer '{layer.name}' is {layer.kind}, not conv2d")
    args = layer.conv_args
    c, h, w = layer.in_shape
    weight = layer.weight
    circular = getattr(layer.module, "padding_mode", "zeros") == "circular"
    same = _is_same_size(layer)
    if circular and same:
        vals = circular_conv_singular_values(weight, (h, w), args["stride"], args["dilation"], args["groups"])
        return ConvSpectrum(vals, "fft-circular", True, (h, w))
    n_in, n_out = math.prod(layer.in_shape), math.prod(layer.out_shape)
    if min(n_in, n_out) <= max_dense:
        return ConvSpectrum(_dense_singular_values(layer), "dense", True, (h, w))
    sh, sw = _pair(args["stride"])
    if not same or h % sh or w % sw:
        raise ShapeError(f"layer '{layer.name}': the operator is {n_out}x{n_in}, too large for the "
                         f"dense method (max side {max_dense}), and its padding does not keep the "
                         "size, so the circular approximation does not apply; raise max_dense")
    vals = circular_conv_singular_values(weight, (h, w), args["stride"], args["dilation"], args["groups"])
    return ConvSpectrum(vals, "fft-circular-approx", False, (h, w))


def _dense_singular_values(layer) -> np.ndarray:
    """Exact singular values from the Gram matrix on the smaller side (float64)."""
    c, h, w = layer.in_shape
    weight = layer.weight.detach().to(torch.float64).cpu()
    args = layer.conv_args
    module = layer.module
    n_in, n_out = math.prod(layer.in_shape), math.prod(layer.out_shape)

    def op(x):
        if getattr(module, "padding_mode", "zeros") != "zeros":
            ph, pw = _pair(args["padding"])
            x = F.pad(x, (pw, pw, ph, ph), mode=module.padding_mode)
            return F.conv2d(x, weight, None, args["stride"], 0, args["dilation"], args["groups"])
        return F.conv2d(x, weight, None, **args)

    with torch.no_grad():
        eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, c, h, w)
        # rows are the operator applied to basis images: A^T, shape (n_in, n_out)
        a = torch.cat([op(eye[s:s + 512]).reshape(-1, n_out) for s in range(0, n_in, 512)])
    a = a.numpy()
    # numpy's LAPACK with one BLAS thread: torch's eigvalsh is many times slower here on
    # small CPU machines, and so is multithreaded OpenBLAS right after torch ops (_blas.py)
    with one_blas_thread():
        gram = a @ a.T if n_in <= n_out else a.T @ a
        ev = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    return np.sort(ev)[::-1].copy()


def _is_same_size(layer) -> bool:
    """True when the output grid is the input grid divided by the stride (`same` padding)."""
    _, h, w = layer.in_shape
    _, ho, wo = layer.out_shape
    sh, sw = _pair(layer.conv_args["stride"])
    return ho * sh == h and wo * sw == w


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)
