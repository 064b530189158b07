"""The linearisation as an explicit product of layer matrices and ReLU masks.

At x a ReLU net is locally `A_L D_{L-1} A_{L-1} ... D_1 A_1` (D_l diagonal 0/1 for the
active units, Behrmann et al. / Wang et al.). Building that product from the layers'
dense matrices is a second, independent way to get each layer's Jacobian: a check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..errors import UnsupportedLayerError
from ._jacobians import DEFAULT_MAX_BYTES, Output, as_batch, as_net, check_bytes, jacobians, outputs


@dataclass(frozen=True)
class MaskProductCheck:
    """Largest difference between the mask product and the forward-mode Jacobians.

    `max_rel_error` is relative to the largest Jacobian entry of each output; `ok` when
    it is at most `rtol`.
    """

    outputs: tuple[str, ...]
    max_abs_error: float
    max_rel_error: float
    rtol: float
    ok: bool

    def to_dict(self) -> dict:
        return dict(outputs=list(self.outputs), max_abs_error=self.max_abs_error,
                    max_rel_error=self.max_rel_error, rtol=self.rtol, ok=self.ok)


def mask_product(model_or_net, x: torch.Tensor, layers: Iterable[int | str] | None = None,
                 dtype: torch.dtype = torch.float64,
                 max_bytes: float = DEFAULT_MAX_BYTES) -> dict[Output, torch.Tensor]:
    """Each output's Jacobian as the product `A_l D_{l-1} ... D_1 A_1` at every sample.

    Arguments:
        model_or_net: a net whose activations are all ReLU or identity (an MLP, or a CNN
            without max pooling; conv layers use their dense matrices).
        x: one sample or a batch.
        layers, dtype, max_bytes: as in `jacobians`.

    Returns:
        `{Output: tensor (B, output size, input size)}`.

    >>> from reluscope import nets
    >>> P = mask_product(nets.mlp([3, 4, 2]), torch.ones(1, 3))
    >>> [tuple(p.shape) for p in P.values()]
    [(1, 4, 3), (1, 4, 3), (1, 2, 3)]
    """
    net = as_net(model_or_net, x, dtype)
    for layer in net.layers:
        if layer.activation not in ("relu", "identity"):
            raise UnsupportedLayerError(
                f"layer '{layer.name}' has activation '{layer.activation}'; the mask product "
                "needs ReLU or identity activations only; use jacobians() for this model")
    xb = as_batch(net, x, dtype)
    outs = outputs(net, layers)
    n = math.prod(net.input_shape)
    item = torch.tensor([], dtype=dtype).element_size()
    mats = sum(math.prod(la.out_shape) * math.prod(la.in_shape) for la in net.layers)
    need = item * (mats + xb.shape[0] * n * sum(o.size for o in outs) + 2 * n * max(o.size for o in outs))
    check_bytes(need, max_bytes, "the mask product")
    stop = max(o.layer for o in outs) + 1
    A = [layer.dense_matrix(max_bytes=max_bytes).to(dtype) for layer in net.layers[:stop]]
    wanted = {(o.layer, o.stage): o for o in outs}
    trace = net.trace(xb)
    result = {o: torch.empty(xb.shape[0], o.size, n, dtype=dtype) for o in outs}
    with torch.no_grad():
        for b in range(xb.shape[0]):
            P = torch.eye(n, dtype=dtype, device=xb.device)
            for i in range(stop):
                P = A[i] @ P
                if (i, "pre") in wanted:
                    result[wanted[(i, "pre")]][b] = P
                mask = trace.masks[i]
                if mask is not None:
                    P = mask[b].reshape(-1, 1).to(dtype) * P
                    if (i, "post") in wanted:
                        result[wanted[(i, "post")]][b] = P
    return result


def check_mask_product(model_or_net, x: torch.Tensor, layers: Iterable[int | str] | None = None,
                       rtol: float = 1e-10) -> MaskProductCheck:
    """Compare `mask_product` with the forward-mode `jacobians` (float64)."""
    net = as_net(model_or_net, x, torch.float64)
    P = mask_product(net, x, layers)
    J = jacobians(net, x, layers)
    abs_err, rel_err = 0.0, 0.0
    for o in P:
        diff = float((P[o] - J[o]).abs().max())
        scale = float(J[o].abs().max()) or 1.0
        abs_err, rel_err = max(abs_err, diff), max(rel_err, diff / scale)
    return MaskProductCheck(tuple(o.label for o in P), abs_err, rel_err, rtol, rel_err <= rtol)
