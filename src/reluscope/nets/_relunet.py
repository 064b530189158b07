"""`ReluNet`: a graph with one path, as an ordered list of affine layers with activations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..errors import NotAChainError
from ._graph import Graph, Node
from ._layer import Layer

# What the chain analyses (written for the papers' nets) read; other graphs stay graphs.
CHAIN_AFFINE = ("linear", "conv2d", "avgpool2d", "locally_connected")
CHAIN_ACTIVATIONS = ("relu", "leaky_relu", "maxpool2d")


@dataclass(frozen=True)
class Trace:
    """Every intermediate of one forward pass.

    `pre[i]` is layer i's affine output, `post[i]` its activation's output, and
    `masks[i]` the activation pattern `pre[i] > 0` (None for non-ReLU-like layers).
    """

    inputs: torch.Tensor
    pre: list[torch.Tensor]
    post: list[torch.Tensor]
    masks: list[torch.Tensor | None]

    @property
    def output(self) -> torch.Tensor:
        return self.post[-1]


def chain_breaker(graph: Graph) -> Node | None:
    """The first node that keeps `graph` from being a chain (None for a chain).

    A chain has one path: each node reads the node before it; its affine maps are of
    `CHAIN_AFFINE`, its activations of `CHAIN_ACTIVATIONS` and each follows an affine
    map, and its only other operations are flattens before an affine map.
    """
    prev, seen_affine, pending_flatten = graph.input, False, False
    for node in graph.nodes[1:]:
        ok = node.inputs == (prev.name,) and (
            (node.op == "affine" and node.kind in CHAIN_AFFINE)
            or (node.op == "activation" and node.kind in CHAIN_ACTIVATIONS and seen_affine
                and not pending_flatten)
            or (node.kind == "reshape" and len(node.out_shape) == 1 and not pending_flatten))
        if not ok:
            return node
        seen_affine = seen_affine or node.op == "affine"
        pending_flatten = node.kind == "reshape"
        prev = node
    return prev if pending_flatten or not seen_affine else None


def chain_layers(graph: Graph) -> list[Layer] | None:
    """The graph as affine layers with their activations, or None unless it is a chain."""
    if chain_breaker(graph) is not None:
        return None
    layers: list[Layer] = []
    flatten = False
    for node in graph.nodes[1:]:
        if node.op == "affine":
            layers.append(dataclasses.replace(node.layer, flatten=flatten, post=[]))
            flatten = False
        elif node.op == "activation":
            layers[-1].post.append(node.module)
        else:  # a flatten before the next affine map
            flatten = True
    return layers


def require_chain(net, analysis: str) -> ReluNet:
    """`net` as a `ReluNet`, or one `NotAChainError` naming the node that makes it a graph."""
    if isinstance(net, ReluNet):
        return net
    node = chain_breaker(net) if isinstance(net, Graph) else None
    where = (f"node '{node.name}' ({node.kind}, reading {', '.join(node.inputs)})" if node
             else "the model")
    raise NotAChainError(
        f"{analysis} reads chains of affine layers with ReLU-like activations; {where} makes this "
        "model a graph, which this analysis does not support yet (the weight spectrum and model "
        "import take any graph)")


class ReluNet(Graph):
    """A chain: the layers of a feed-forward ReLU model, in order.

    Build one with `reluscope.nets.load`. It is a `Graph` with one path, and also a
    list of layers (affine map + activation). It is a view: it shares the parameters
    of `model`, so it always sees the model's current weights.
    """

    def __init__(self, graph: Graph, layers: list[Layer]):
        super().__init__(graph.model, graph.nodes, graph.input_shape, graph.aliases)
        self.layers = layers

    @property
    def is_chain(self) -> bool:
        return True

    # -- introspection ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, key: int | str) -> Layer:
        if isinstance(key, str):
            return self.layer(key)
        return self.layers[key]

    def __iter__(self):
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = ", ".join(lay.name for lay in self.layers)
        raise KeyError(f"no layer named '{name}'; layers are: {names}")

    def index(self, key: int | str) -> int:
        """Position of a layer given by index (negative allowed) or by name."""
        if isinstance(key, str):
            if key.lstrip("-").isdigit():
                key = int(key)
            else:
                return self.layers.index(self.layer(key))
        n = len(self.layers)
        if not -n <= key < n:
            raise IndexError(f"layer index {key} out of range for a net of {n} layers")
        return key % n

    def summary(self) -> list[dict]:
        """The layer table: one dict per layer (name, type, shapes, parameters, activation)."""
        return [layer.describe() for layer in self.layers]

    def relu_layers(self) -> list[int]:
        """Indices of the layers whose activation is a plain ReLU."""
        return [i for i, layer in enumerate(self.layers) if layer.is_relu]

    def is_mlp(self) -> bool:
        return all(layer.kind == "linear" for layer in self.layers)

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Output of layer `upto` (default: the last), after its activation."""
        self.check_input(x)
        stop = len(self.layers) if upto is None else self.index(upto) + 1
        for layer in self.layers[:stop]:
            x = layer(x)
        return x

    __call__ = forward

    def trace(self, x: torch.Tensor) -> Trace:
        """Run `x` through every layer and keep all pre-activations and patterns."""
        self.check_input(x)
        pre, post, masks = [], [], []
        h = x
        for layer in self.layers:
            z = layer.affine(h)
            h = layer.activate(z)
            pre.append(z)
            post.append(h)
            masks.append(z > 0 if layer.activation in ("relu", "leaky_relu") else None)
        return Trace(x, pre, post, masks)

    def __repr__(self) -> str:
        rows = ", ".join(f"{la.name}:{la.kind}->{la.activation}" for la in self.layers)
        return f"ReluNet(input_shape={self.input_shape}, layers=[{rows}])"
