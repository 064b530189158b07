"""`Graph`: a model as a directed acyclic graph of named nodes.

Every node is one of
- `input`: the model's input;
- `affine`: an affine map `W x + b` (Linear, Conv1d/2d, AvgPool, AdaptiveAvgPool, a batch
  norm that could not be folded, LocallyConnected2d), held as a `Layer` view (BN folded);
- `activation`: an elementwise or pooling nonlinearity, piecewise-linear (ReLU,
  LeakyReLU, ReLU6/Hardtanh, MaxPool) or smooth (GELU, SiLU, ELU, Tanh, Sigmoid);
- `join`: a linear map without parameters over one or more nodes (residual `add`,
  possibly weighted; `cat`; `reshape`/flatten/view; scalar `scale`; `mean`).

Affine and join nodes are the graph's *linear part*: `apply(*xs, bias=False)` is linear
in its inputs, which is what the shadow model transposes and what pre-images invert.
A chain (one path, ReLU-like activations) is the special case `ReluNet`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError, ShapeError
from ._layer import Layer, placement

PIECEWISE_LINEAR = ("relu", "leaky_relu", "relu6", "hardtanh", "maxpool1d", "maxpool2d")
SMOOTH = ("gelu", "silu", "elu", "tanh", "sigmoid", "softplus")


class UnknownNodeError(ConfigError, KeyError):
    """A node name that the graph does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(eq=False)
class Node:
    """One operation of the graph.

    Attributes:
        name: the user's module path (`stage2.0.conv1`) or, for a functional call, the
            name torch.fx gave it (`add_1`, `cat`); unique in the graph.
        op: `input`, `affine`, `activation` or `join`.
        kind: what it computes (`conv2d`, `relu`, `add`, `cat`, `reshape`, ...).
        inputs: names of the nodes it reads, in argument order.
        out_shape: per-sample shape of its output; `in_shapes` those of its inputs.
        layer: for affine nodes, the `Layer` view of the map (batch norm folded).
        module: for activations, the (non-inplace) module applied.
        params: for joins, `weights` (add), `dim` (cat, mean), `keepdim` (mean), `scale`.
    """

    name: str
    op: str
    kind: str
    inputs: tuple[str, ...] = ()
    out_shape: tuple[int, ...] = ()
    in_shapes: tuple[tuple[int, ...], ...] = ()
    layer: Layer | None = None
    module: nn.Module | None = None
    params: dict = field(default_factory=dict)
    source: str = ""  # the module or function type, for the node table

    @property
    def is_linear(self) -> bool:
        """Affine or join: linear in its inputs once the bias is dropped."""
        return self.op in ("affine", "join")

    @property
    def is_relu(self) -> bool:
        return self.op == "activation" and self.kind == "relu"

    @property
    def piecewise_linear(self) -> bool:
        return self.op != "activation" or self.kind in PIECEWISE_LINEAR

    def apply(self, *xs: torch.Tensor, bias: bool = True) -> torch.Tensor:
        """The node's output for batched inputs `xs` (`bias=False`: its linear part)."""
        if self.op == "affine":
            return self.layer.affine(xs[0], bias=bias)
        if self.op == "activation":
            return self.module(xs[0])
        if self.op == "join":
            return _JOINS[self.kind](self, xs)
        return xs[0]

    def num_parameters(self) -> int:
        if self.layer is None:
            return 0
        mods = [self.layer.module, self.layer.bn_before, self.layer.bn_after]
        return sum(p.numel() for m in mods if m is not None for p in m.parameters())

    def describe(self) -> dict:
        """One row of the node table (`reluscope info`)."""
        activation = self.kind if self.op == "activation" else ""
        if activation:
            activation += "" if self.piecewise_linear else " (smooth)"
        return dict(name=self.name, op=self.op, type=self.source or self.kind, kind=self.kind,
                    inputs=list(self.inputs), out_shape=list(self.out_shape),
                    parameters=self.num_parameters(), activation=activation)


def _add(node: Node, xs) -> torch.Tensor:
    out = None
    for w, x in zip(node.params["weights"], xs):
        term = x if w == 1 else x * w
        out = term if out is None else out + term
    return out


def _reshape(node: Node, xs) -> torch.Tensor:
    return xs[0].reshape(xs[0].shape[0], *node.out_shape)


def _mean(node: Node, xs) -> torch.Tensor:
    return xs[0].mean(dim=node.params["dim"], keepdim=node.params["keepdim"])


_JOINS: dict[str, Callable[[Node, Sequence[torch.Tensor]], torch.Tensor]] = {
    "add": _add,
    "cat": lambda n, xs: torch.cat(list(xs), dim=n.params["dim"]),
    "reshape": _reshape,
    "scale": lambda n, xs: xs[0] * n.params["scale"],
    "mean": _mean,
}


class Graph:
    """The nodes of a model in topological order, named as in the model.

    Build one with `reluscope.nets.load`. It is a view: affine nodes read the model's
    parameters on every call, so the graph follows the model while it trains.
    """

    def __init__(self, model: nn.Module, nodes: list[Node], input_shape: tuple[int, ...],
                 aliases: dict[str, str] | None = None):
        self.model = model
        self.nodes = nodes
        self.input_shape = tuple(input_shape)
        self.aliases = dict(aliases or {})
        self._by_name = {n.name: n for n in nodes}

    # -- introspection ----------------------------------------------------------------
    @property
    def input(self) -> Node:
        return self.nodes[0]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output.out_shape

    @property
    def is_chain(self) -> bool:
        return False

    def node(self, name: str) -> Node:
        """The node called `name` (a folded batch norm or a skipped dropout resolves to
        the node that carries its value)."""
        name = self.aliases.get(name, name)
        if name not in self._by_name:
            names = ", ".join(n.name for n in self.nodes[1:])
            raise UnknownNodeError(f"no node named '{name}'; nodes are: {names}")
        return self._by_name[name]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def ancestors(self, name: str) -> set[str]:
        """Names of `name` and of every node it depends on."""
        seen, todo = {self.node(name).name}, [self.node(name).name]
        while todo:
            for k in self._by_name[todo.pop()].inputs:
                if k not in seen:
                    seen.add(k)
                    todo.append(k)
        return seen

    def relu_nodes(self) -> list[Node]:
        """The ReLU activation nodes, in topological order."""
        return [n for n in self.nodes if n.is_relu]

    def affine_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "affine"]

    @property
    def device(self) -> torch.device:
        return placement(self.model)[0]

    @property
    def dtype(self) -> torch.dtype:
        return placement(self.model)[1]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def table(self) -> list[dict]:
        """The node table: one dict per node after the input."""
        return [n.describe() for n in self.nodes[1:]]

    # -- evaluation -------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise ShapeError unless `x` is a batch `(B, *input_shape)`."""
        if tuple(x.shape[1:]) != self.input_shape and not (
            self._flattens_input() and math.prod(x.shape[1:]) == math.prod(self.input_shape)
        ):
            raise ShapeError(
                f"input has shape {tuple(x.shape)} but the model expects (batch, "
                f"{', '.join(map(str, self.input_shape))}); reshape the data or pass "
                "input_shape= when loading the model")

    def _flattens_input(self) -> bool:
        users = self.consumers(self.input.name)
        return bool(users) and all(u.kind == "reshape" for u in users)

    def run(self, x: torch.Tensor, keep: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Every node's output for the batch `x` (or only those named in `keep`)."""
        self.check_input(x)
        if tuple(x.shape[1:]) != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        wanted = None if keep is None else {self.node(k).name for k in keep}
        last_use = _last_uses(self.nodes)
        env: dict[str, torch.Tensor] = {self.input.name: x}
        out: dict[str, torch.Tensor] = {}
        for i, node in enumerate(self.nodes):
            if i:
                env[node.name] = node.apply(*(env[k] for k in node.inputs))
            if wanted is None or node.name in wanted:
                out[node.name] = env[node.name]
            for k in node.inputs:  # free what no later node reads
                if last_use[k] == i:
                    env.pop(k, None)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, keep=[self.output.name])[self.output.name]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def copy(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None):
        """The same view over a deep copy of the model, optionally cast (e.g. to float64)."""
        from ._import import load_module

        model = copy.deepcopy(self.model)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        return load_module(model, input_shape=self.input_shape)

    def __repr__(self) -> str:
        rows = ", ".join(f"{n.name}:{n.kind}" for n in self.nodes[1:])
        return f"Graph(input_shape={self.input_shape}, nodes=[{rows}])"


def _last_uses(nodes: list[Node]) -> dict[str, int]:
    last = {n.name: len(nodes) for n in nodes}  # never freed unless read
    for i, n in enumerate(nodes):
        for k in n.inputs:
            last[k] = i
    last[nodes[-1].name] = len(nodes)
    return last


def as_graph(model_or_graph, input_shape: tuple[int, ...] | None = None) -> Graph:
    """A `Graph` (or `ReluNet`, a graph too) for an `nn.Module` or an already loaded graph."""
    if isinstance(model_or_graph, Graph):
        return model_or_graph
    if isinstance(model_or_graph, nn.Module):
        from ._import import load_module

        return load_module(model_or_graph, input_shape)
    raise ConfigError(f"expected a torch.nn.Module or a graph from reluscope.nets.load, got "
                      f"{type(model_or_graph).__name__}")
