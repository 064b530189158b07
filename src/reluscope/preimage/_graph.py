"""Pre-images of a ReLU node of a graph, in the joint space of the values that feed it.

In a graph, a ReLU node reads a pre-activation that is an affine function of the nearest
non-linear nodes behind it (its *sources*: activations or the model's input), through
affine maps and joins only. Inside a residual block `relu(bn(conv(y)) + x)` that is
`W [y; x] + b` with y the block's first ReLU and x the block's input. The pre-image of
the node's output is the set of source values `s` with `ReLU(W s + b) = ReLU(W s0 + b)`:
a polytope in the joint space of the sources, classified exactly as one layer of a chain.

The sources are treated as free: the pre-image ignores that y is itself a function of x.
So a node whose sources have more entries than it has outputs (a residual add of two
maps of the same width) always has an unbounded pre-image: the joint space alone loses
at least that many dimensions. On a chain the sources are the previous layer's outputs
and the definition is the chain's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, ResourceError
from ..nets import Graph, Node
from ..nets._layer import DEFAULT_MAX_DENSE_BYTES

CHUNK_BYTES = 256 * 2**20  # memory for one batch of basis vectors pushed through the region


@dataclass(frozen=True)
class AffineRegion:
    """The affine part of a graph that computes a ReLU node's pre-activation.

    Attributes:
        node: the ReLU node; pre: the node it reads (its pre-activation).
        sources: the non-linear nodes (or the input) the pre-activation is affine in,
            in topological order; sizes: their numbers of entries.
        linear: the affine and join nodes between sources and `pre`, in topological order.
    """

    node: str
    pre: str
    sources: tuple[str, ...]
    sizes: tuple[int, ...]
    linear: tuple[str, ...]

    @property
    def n(self) -> int:
        return sum(self.sizes)


def resolve_relu_node(graph: Graph, node: int | str) -> Node:
    """The ReLU node named `node`, or the `node`-th ReLU node (from 0, in topological order)."""
    relus = graph.relu_nodes()
    names = ", ".join(f"'{r.name}'" for r in relus) or "none"
    if isinstance(node, str) and node.lstrip("-").isdigit():
        node = int(node)
    if isinstance(node, int):
        if not -len(relus) <= node < len(relus):
            raise ConfigError(f"ReLU node index {node} out of range: the model has {len(relus)} ReLU "
                              f"nodes ({names})")
        return relus[node]
    found = graph.node(node)
    if not found.is_relu:
        raise ConfigError(f"node '{found.name}' is a {found.kind} {found.op}, not a plain ReLU; choose one "
                          f"of the ReLU nodes {names}")
    return found


def affine_region(graph: Graph, node: Node) -> AffineRegion:
    """Walk back from the ReLU node through linear nodes to its sources."""
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    pre = node.inputs[0]
    sources, linear, stack, seen = set(), set(), [pre], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        current = graph.node(name)
        if current.is_linear:
            linear.add(name)
            stack.extend(current.inputs)
        else:
            sources.add(name)
    sources = sorted(sources, key=order.__getitem__)
    sizes = tuple(math.prod(graph.node(s).out_shape) for s in sources)
    return AffineRegion(node.name, pre, tuple(sources), sizes, tuple(sorted(linear, key=order.__getitem__)))


def _pre_activation(graph: Graph, region: AffineRegion, values: dict[str, torch.Tensor],
                    bias: bool) -> torch.Tensor:
    env = dict(values)
    for name in region.linear:
        node = graph.node(name)
        env[name] = node.apply(*(env[k] for k in node.inputs), bias=bias)
    return env[region.pre]


def region_system(graph: Graph, region: AffineRegion,
                  max_bytes: int = DEFAULT_MAX_DENSE_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The pre-activation as a dense float64 `W (m, n)` and `b (m,)` over the joint sources.

    Columns come from pushing basis vectors of one source at a time (the others zero)
    through the region's linear part; the bias is the region at zero.
    """
    g64 = graph.copy(dtype=torch.float64, device="cpu")
    m = math.prod(g64.node(region.pre).out_shape)
    need = m * region.n * 8
    if need > max_bytes:
        raise ResourceError(
            f"the pre-image system of node '{region.node}' is {m}x{region.n} ({need / 2**30:.1f} GiB), over "
            f"the limit of {max_bytes / 2**30:.1f} GiB; raise max_bytes or choose a smaller ReLU node")
    shapes = {s: g64.node(s).out_shape for s in region.sources}
    chunk = max(1, CHUNK_BYTES // (8 * (m + region.n)))
    cols = []
    with torch.no_grad():
        zeros = {s: torch.zeros(1, *shapes[s], dtype=torch.float64) for s in region.sources}
        b = _pre_activation(g64, region, zeros, bias=True).reshape(-1)
        for source, size in zip(region.sources, region.sizes):
            for start in range(0, size, chunk):
                k = min(chunk, size - start)
                basis = torch.zeros(k, size, dtype=torch.float64)
                basis[torch.arange(k), torch.arange(start, start + k)] = 1.0
                values = {s: torch.zeros(k, *shapes[s], dtype=torch.float64) for s in region.sources}
                values[source] = basis.reshape(k, *shapes[source])
                cols.append(_pre_activation(g64, region, values, bias=False).reshape(k, m).T)
    return torch.cat(cols, dim=1).numpy(), b.numpy()


def source_values(graph: Graph, region: AffineRegion, x: torch.Tensor) -> np.ndarray:
    """The joint source values `(N, n)` for model inputs x, in float64."""
    g64 = graph.copy(dtype=torch.float64, device="cpu")
    with torch.no_grad():
        out = g64.run(x.detach().to("cpu", torch.float64), keep=list(region.sources))
    return torch.cat([out[s].reshape(len(x), -1) for s in region.sources], dim=1).numpy()


def describe_region(graph: Graph, region: AffineRegion) -> str:
    """In words, the space the node's pre-image lives in."""
    if region.sources == (graph.input.name,):
        return f"the model's input space R^{region.n}"
    parts = " and ".join(f"'{s}' (R^{k})" for s, k in zip(region.sources, region.sizes))
    joint = "the joint space" if len(region.sources) > 1 else "the space"
    return (f"{joint} R^{region.n} of the outputs of {parts}, each taken as free; not pulled back "
            "to the model's input")
