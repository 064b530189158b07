"""The linearisation as an explicit product of layer matrices and ReLU masks.

At x a ReLU net is locally `A_L D_{L-1} A_{L-1} ... D_1 A_1` (D_l diagonal 0/1 for the
active units, Behrmann et al. / Wang et al.). Building that product from the layers'
dense matrices is a second, independent way to get each layer's Jacobian: a check.

On a graph the product is taken node by node in topological order: an affine node
multiplies by its dense matrix, a ReLU node by its 0/1 mask, and a join (residual add,
concatenation, reshape, ...) sums its inputs' products through the dense matrix of its
linear map on each input, so where branches meet the Jacobian is the sum over paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .._display import Tabular
from ..errors import UnsupportedLayerError
from ._jacobians import (
    DEFAULT_MAX_BYTES,
    Output,
    as_batch,
    as_net,
    check_bytes,
    jacobians,
    non_chain,
    outputs,
)


@dataclass(frozen=True)
class MaskProductCheck(Tabular):
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
            without max pooling; conv layers use their dense matrices), or a graph whose
            activation nodes are all ReLU (residual nets, concatenations).
        x: one sample or a batch.
        layers: as in `jacobians` (on a graph: nodes, stage `out`).
        dtype: as in `jacobians`.
        max_bytes: as in `jacobians`.

    Returns:
        `{Output: tensor (B, output size, input size)}`.

    >>> from reluscope import nets
    >>> P = mask_product(nets.mlp([3, 4, 2]), torch.ones(1, 3))
    >>> [tuple(p.shape) for p in P.values()]
    [(1, 4, 3), (1, 4, 3), (1, 2, 3)]
    """
    graph = non_chain(model_or_net, x)
    if graph is not None:
        return _graph_mask_product(graph, x, layers, dtype, max_bytes)
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
    net = non_chain(model_or_net, x) or as_net(model_or_net, x, torch.float64)
    P = mask_product(net, x, layers)
    J = jacobians(net, x, layers)
    abs_err, rel_err = 0.0, 0.0
    for o in P:
        diff = float((P[o] - J[o]).abs().max())
        scale = float(J[o].abs().max()) or 1.0
        abs_err, rel_err = max(abs_err, diff), max(rel_err, diff / scale)
    return MaskProductCheck(tuple(o.label for o in P), abs_err, rel_err, rtol, rel_err <= rtol)


def _graph_mask_product(graph, x, layers, dtype, max_bytes) -> dict[Output, torch.Tensor]:
    from ._graph_spectra import cast, graph_outputs

    for node in graph.nodes:
        if node.op == "activation" and not node.is_relu:
            raise UnsupportedLayerError(
                f"node '{node.name}' is a {node.kind} activation; the mask product needs ReLU "
                "activations only; use jacobians() for this model")
    graph = cast(graph, dtype)
    xb = as_batch(graph, x, dtype)
    outs = graph_outputs(graph, layers)
    stop = max(o.layer for o in outs) + 1
    nodes = graph.nodes[:stop]
    n = math.prod(graph.input_shape)
    size = {node.name: math.prod(node.out_shape) for node in nodes}
    item = torch.tensor([], dtype=dtype).element_size()
    mats = sum(size[node.name] * size[k] for node in nodes if node.is_linear for k in node.inputs)
    need = item * (mats + n * (xb.shape[0] * sum(o.size for o in outs) + sum(size.values())))
    check_bytes(need, max_bytes, "the mask product")
    # each linear node's dense matrix on each of its inputs
    M = {node.name: _dense_maps(node, dtype, xb.device, max_bytes) for node in nodes if node.is_linear}
    last = {}
    for i, node in enumerate(nodes):
        for k in node.inputs:
            last[k] = i
    wanted = {o.layer: o for o in outs}
    result = {o: torch.empty(xb.shape[0], o.size, n, dtype=dtype, device=xb.device) for o in outs}
    with torch.no_grad():
        values = graph.run(xb)
        for b in range(xb.shape[0]):
            P = {nodes[0].name: torch.eye(n, dtype=dtype, device=xb.device)}
            for i, node in enumerate(nodes[1:], 1):
                if node.is_linear:
                    P[node.name] = sum(A @ P[k] for A, k in zip(M[node.name], node.inputs))
                else:  # a ReLU: its 0/1 pattern on the rows
                    mask = values[node.inputs[0]][b].reshape(-1, 1) > 0
                    P[node.name] = mask.to(dtype) * P[node.inputs[0]]
                if i in wanted:
                    result[wanted[i]][b] = P[node.name]
                for k in set(node.inputs):
                    if last[k] == i:
                        P.pop(k)
    return result


def _dense_maps(node, dtype, dev, max_bytes: float) -> list[torch.Tensor]:
    """The matrices `(out size, input size)` of a linear node's map on each of its inputs
    (the others held at zero): the affine node's dense matrix, a join's from unit vectors."""
    if node.op == "affine":
        return [node.layer.dense_matrix(max_bytes=max_bytes).to(dtype)]
    mats = []
    for a, shape in enumerate(node.in_shapes):
        k = math.prod(shape)
        basis = torch.eye(k, dtype=dtype, device=dev).reshape(k, *shape)
        xs = [basis if b == a else torch.zeros(k, *s, dtype=dtype, device=dev)
              for b, s in enumerate(node.in_shapes)]
        mats.append(node.apply(*xs, bias=False).reshape(k, -1).T.contiguous())
    return mats
