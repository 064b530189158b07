"""`Layer`: one affine map (with folded batch norm) followed by its activation.

A layer is a live view of the user's modules: `weight` and `bias` are recomputed
from them on access, so a ReluNet follows a model while it trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ResourceError
from ._locally import LocallyConnected2d

DEFAULT_MAX_DENSE_BYTES = 2 * 1024**3


def placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a module's first floating tensor (cpu and the default dtype
    for a module without any, e.g. a pool)."""
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as `x * scale + shift` per channel (running statistics)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


@dataclass(eq=False)
class Layer:
    """An affine map `z = W x + b` followed by `activation`.

    Attributes:
        name: module path of the affine module in the user's model (e.g. `features.3`).
        kind: `linear`, `conv1d`, `conv2d`, `avgpool2d`, `locally_connected`; in graphs
            also `avgpool1d`, `adaptive_avgpool1d/2d` (no weight) and `batchnorm` (a batch
            norm that could not be folded: weight and bias are its per-channel scale, shift).
        in_shape, out_shape: per-sample shapes of the affine map's input and output.
        activation: `relu`, `leaky_relu`, `maxpool2d`, `identity`, or a `+`-joined chain.
        flatten: the input is flattened before the affine map.
    """

    name: str
    kind: str
    module: nn.Module
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    flatten: bool = False
    bn_after: nn.Module | None = None
    bn_before: nn.Module | None = None
    post: list[nn.Module] = field(default_factory=list)

    # -- parameters -------------------------------------------------------------------
    @property
    def activation(self) -> str:
        names = [_ACT_NAMES[type(m)] for m in self.post]
        return "+".join(names) if names else "identity"

    @property
    def is_relu(self) -> bool:
        """True when the activation is exactly a ReLU (the case the theory covers)."""
        return self.activation == "relu"

    @property
    def conv_args(self) -> dict:
        """stride, padding, dilation, groups of a conv-like layer (for F.conv2d)."""
        m = self.module
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)
        if isinstance(m, nn.AvgPool2d):
            return dict(stride=_pair(m.stride or m.kernel_size), padding=_pair(m.padding),
                        dilation=(1, 1), groups=self.in_shape[0])
        return {}

    @property
    def has_weight(self) -> bool:
        """False for the parameter-free pools applied as modules."""
        return self.kind not in _MODULE_MAPS

    def _raw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = self.module
        if self.kind == "batchnorm":
            return _bn_scale_shift(m)
        if not self.has_weight:
            raise ValueError(f"layer '{self.name}' ({self.kind}) has no weight tensor")
        if isinstance(m, nn.AvgPool2d):
            c = self.in_shape[0]
            kh, kw = _pair(m.kernel_size)
            w = torch.full((c, 1, kh, kw), 1.0 / (kh * kw), dtype=torch.get_default_dtype())
            return w, None
        return m.weight, m.bias

    @property
    def weight(self) -> torch.Tensor:
        return self.parameters()[0]

    @property
    def bias(self) -> torch.Tensor:
        return self.parameters()[1]

    def parameters(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with batch norm folded in (bias is never None)."""
        w, b = self._raw()
        dev = self.device
        w = w.to(dev)
        n_out = w.shape[-2] if self.kind == "locally_connected" else w.shape[0]
        if b is None:
            b = torch.zeros(self.out_shape if self.kind == "locally_connected" else n_out,
                            dtype=w.dtype, device=dev)
        if self.kind == "batchnorm":
            return w.to(dev), b.to(dev)
        if self.bn_before is not None:
            scale, shift = _bn_scale_shift(self.bn_before)
            # W (s x + t) + b = (W diag s) x + (W t + b); exact for Linear and unpadded conv.
            if self.kind == "linear":
                reps = w.shape[1] // scale.numel()  # BatchNorm2d before Flatten+Linear
                b = b + w @ shift.repeat_interleave(reps)
                w = w * scale.repeat_interleave(reps)[None, :]
            else:
                b = b + (w * shift[None, :, None, None]).sum(dim=(1, 2, 3))
                w = w * scale[None, :, None, None]
        if self.bn_after is not None:
            scale, shift = _bn_scale_shift(self.bn_after)
            w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
            b = b * scale + shift
        return w, b

    @property
    def device(self) -> torch.device:
        return placement(self.module)[0]

    # -- maps -------------------------------------------------------------------------
    def affine(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        """The affine map on a batch `x` of shape `(B, *in_shape)` (or unflattened)."""
        if self.flatten:
            x = x.flatten(1)
        if not self.has_weight:
            return self.module(x)  # a pool: linear, no bias
        w, b = self.parameters()
        if self.kind == "batchnorm":
            view = (1, -1) + (1,) * (x.dim() - 2)
            w, b = w.to(x.dtype).reshape(view), b.to(x.dtype).reshape(view)
            return x * w + b if bias else x * w
        if self.kind == "linear":
            return F.linear(x, w, b if bias else None)
        if self.kind == "locally_connected":
            m: LocallyConnected2d = self.module
            oh, ow = m.out_size
            patches = F.unfold(x, m.kernel_size, stride=m.stride)
            patches = patches.transpose(1, 2).reshape(x.shape[0], oh, ow, -1)
            out = torch.einsum("bhwk,hwok->bohw", patches, w)
            return out + b if bias else out
        if self.kind == "conv1d":
            return F.conv1d(x, w.to(x.dtype), (b if bias else None), **self.conv_args)
        if isinstance(self.module, nn.AvgPool2d) and self.bn_after is None and self.bn_before is None:
            b = None
        return F.conv2d(x, w.to(x.dtype), (b if bias else None), **self.conv_args)

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        for m in self.post:
            z = m(z)
        return z

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.affine(x))

    def dense_matrix(self, max_bytes: int = DEFAULT_MAX_DENSE_BYTES) -> torch.Tensor:
        """The affine map's matrix, `(prod(out_shape), prod(in_shape))`.

        For a linear layer this is the (folded) weight. For conv-like layers it is built
        column by column from the map itself; a `ResourceError` names the size first
        when it would exceed `max_bytes`.
        """
        if self.kind == "linear":
            return self.parameters()[0]
        dtype, device = self.dtype, self.device
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        size = torch.empty((), dtype=dtype).element_size()
        need = n_in * n_out * size
        if need > max_bytes:
            raise ResourceError(
                f"the dense matrix of layer '{self.name}' is {n_out}x{n_in} "
                f"({need / 2**30:.1f} GiB), over the limit of {max_bytes / 2**30:.1f} GiB; "
                "raise max_bytes or analyse a smaller input size")
        cols = []
        chunk = max(1, min(n_in, (256 * 2**20) // max(1, n_out * size)))
        with torch.no_grad():
            eye = torch.eye(n_in, dtype=dtype, device=device)
            for s in range(0, n_in, chunk):
                basis = eye[s:s + chunk].reshape(-1, *self.in_shape)
                cols.append(self.affine(basis, bias=False).reshape(basis.shape[0], -1))
        return torch.cat(cols).T.contiguous()

    @property
    def dtype(self) -> torch.dtype:
        return placement(self.module)[1]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def describe(self) -> dict:
        """One row of the layer table (`reluscope info`)."""
        parts = [type(self.module).__name__]
        if self.bn_before is not None or self.bn_after is not None:
            parts.append("BN folded")
        return dict(name=self.name, type=" + ".join(parts), kind=self.kind,
                    in_shape=list(self.in_shape), out_shape=list(self.out_shape),
                    parameters=self.num_parameters(), activation=self.activation)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


_MODULE_MAPS = ("avgpool1d", "adaptive_avgpool1d", "adaptive_avgpool2d")

_ACT_NAMES: dict[type, str] = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.MaxPool2d: "maxpool2d",
}
