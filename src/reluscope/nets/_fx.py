"""Read a module's forward with torch.fx into graph nodes, named as in the model.

Each fx operation becomes an affine, activation or join node, or is skipped (dropout,
identity, shape queries). Values are recorded on a probe batch, so every node knows its
shapes and an operation that mixes the samples of a batch is caught here.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import ModelError, ShapeError, UnsupportedLayerError
from ._graph import Node
from ._layer import Layer
from ._locally import LocallyConnected2d

SUPPORTED = ("Linear, Conv1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, LocallyConnected2d, "
             "BatchNorm1d/2d (eval), ReLU, LeakyReLU, ReLU6, Hardtanh, MaxPool1d/2d, GELU, SiLU, "
             "ELU, Tanh, Sigmoid, Softplus, add/sub (also weighted), cat, flatten/view/reshape, "
             "mean, scalar mul/div, Dropout, Identity")

_AFFINE_MODULES: dict[type, str] = {
    nn.Linear: "linear", nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.AvgPool1d: "avgpool1d",
    nn.AvgPool2d: "avgpool2d", nn.AdaptiveAvgPool1d: "adaptive_avgpool1d",
    nn.AdaptiveAvgPool2d: "adaptive_avgpool2d", LocallyConnected2d: "locally_connected",
    nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm",
}


def _hardtanh(lo: float, hi: float) -> tuple[str, nn.Module]:
    return ("relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh"), nn.Hardtanh(lo, hi)


# Activation modules, rebuilt without `inplace` so a graph never overwrites a value it keeps.
_ACTIVATION_MODULES: dict[type, Callable[[nn.Module], tuple[str, nn.Module]]] = {
    nn.ReLU: lambda m: ("relu", nn.ReLU()),
    nn.LeakyReLU: lambda m: ("leaky_relu", nn.LeakyReLU(m.negative_slope)),
    nn.ReLU6: lambda m: ("relu6", nn.ReLU6()),
    nn.Hardtanh: lambda m: _hardtanh(m.min_val, m.max_val),
    nn.MaxPool1d: lambda m: ("maxpool1d", m),
    nn.MaxPool2d: lambda m: ("maxpool2d", m),
    nn.GELU: lambda m: ("gelu", nn.GELU(approximate=m.approximate)),
    nn.SiLU: lambda m: ("silu", nn.SiLU()),
    nn.ELU: lambda m: ("elu", nn.ELU(m.alpha)),
    nn.Tanh: lambda m: ("tanh", nn.Tanh()),
    nn.Sigmoid: lambda m: ("sigmoid", nn.Sigmoid()),
    nn.Softplus: lambda m: ("softplus", nn.Softplus(m.beta, m.threshold)),
}
_SKIPPED_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)


def _kw(a, k, names):
    """Positional `a` and keyword `k` arguments as one dict over `names` (no inplace)."""
    out = dict(zip(names, a))
    out.update({key: v for key, v in k.items() if key != "inplace"})
    return out


_ACTIVATION_FUNCTIONS: dict[object, Callable[[tuple, dict], tuple[str, nn.Module]]] = {
    F.relu: lambda a, k: ("relu", nn.ReLU()),
    torch.relu: lambda a, k: ("relu", nn.ReLU()),
    torch.relu_: lambda a, k: ("relu", nn.ReLU()),
    F.relu6: lambda a, k: ("relu6", nn.ReLU6()),
    F.hardtanh: lambda a, k: _hardtanh(**{"min_val": -1.0, "max_val": 1.0,
                                          **_kw(a, k, ["min_val", "max_val"])}),
    F.leaky_relu: lambda a, k: ("leaky_relu", nn.LeakyReLU(**_kw(a, k, ["negative_slope"]))),
    F.gelu: lambda a, k: ("gelu", nn.GELU(**_kw(a, k, ["approximate"]))),
    F.silu: lambda a, k: ("silu", nn.SiLU()),
    F.elu: lambda a, k: ("elu", nn.ELU(**_kw(a, k, ["alpha"]))),
    torch.tanh: lambda a, k: ("tanh", nn.Tanh()),
    F.tanh: lambda a, k: ("tanh", nn.Tanh()),
    torch.sigmoid: lambda a, k: ("sigmoid", nn.Sigmoid()),
    F.sigmoid: lambda a, k: ("sigmoid", nn.Sigmoid()),
    F.softplus: lambda a, k: ("softplus", nn.Softplus(**_kw(a, k, ["beta", "threshold"]))),
    F.max_pool1d: lambda a, k: ("maxpool1d", nn.MaxPool1d(*a, **k)),
    F.max_pool2d: lambda a, k: ("maxpool2d", nn.MaxPool2d(*a, **k)),
}
_ACTIVATION_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_AFFINE_FUNCTIONS: dict[object, Callable[[tuple, dict], nn.Module]] = {
    F.avg_pool1d: lambda a, k: nn.AvgPool1d(*a, **k),
    F.avg_pool2d: lambda a, k: nn.AvgPool2d(*a, **k),
    F.adaptive_avg_pool1d: lambda a, k: nn.AdaptiveAvgPool1d(*a, **k),
    F.adaptive_avg_pool2d: lambda a, k: nn.AdaptiveAvgPool2d(*a, **k),
}
_RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)
_RESHAPE_METHODS = ("flatten", "view", "reshape", "squeeze", "unsqueeze")
_SKIPPED_FUNCTIONS = (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout)
_SKIPPED_METHODS = ("contiguous", "clone", "detach")
_ADD = {operator.add: 1.0, operator.iadd: 1.0, torch.add: 1.0, operator.sub: -1.0,
        operator.isub: -1.0, torch.sub: -1.0}
_MUL = (operator.mul, operator.imul, torch.mul)
_DIV = (operator.truediv, operator.itruediv, torch.div)

PROBE_BATCH = 2


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LocallyConnected2d) or super().is_leaf_module(m, qualname)


class _Recorder(fx.Interpreter):
    """Runs the traced graph once and keeps every fx node's value."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values: dict[str, object] = {}

    def run_node(self, n):
        value = super().run_node(n)
        self.values[n.name] = value
        return value


def _unsupported(name: str, what: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"operation '{name}' ({what}) is not supported; reluscope reads graphs of: {SUPPORTED}")


def trace(model: nn.Module) -> fx.GraphModule:
    """The fx graph of `model`, or one line saying why it cannot be traced."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.Embedding)):
            raise UnsupportedLayerError(
                f"layer '{name}' of type {type(m).__name__} is not supported; reluscope reads "
                f"feed-forward graphs of: {SUPPORTED}")
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"cannot trace the forward of {type(model).__name__} with torch.fx ({first}); "
            "remove data-dependent control flow (if/for on tensor values) or pass an "
            "nn.Sequential") from None
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ModelError(f"the model's forward takes {len(placeholders)} inputs; reluscope "
                         "reads models with one input tensor: wrap it so forward takes one")
    return fx.GraphModule(model, graph)


def infer_input_shape(gm: fx.GraphModule) -> tuple[int, ...]:
    """The input shape implied by the first parametrised module (Linear, LocallyConnected)."""
    modules = dict(gm.named_modules())
    for n in gm.graph.nodes:
        if n.op != "call_module":
            continue
        m = modules[n.target]
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, LocallyConnected2d):
            return (m.in_channels, *m.in_size)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            break
    raise ShapeError("cannot infer the input shape of this model; pass input_shape=(C, H, W) "
                     "(CLI: --data or --input-shape)")


def record(gm: fx.GraphModule, input_shape: tuple[int, ...], device, dtype) -> dict[str, object]:
    """Every fx node's value on a probe batch of zeros."""
    x = torch.zeros(PROBE_BATCH, *input_shape, device=device, dtype=dtype)
    rec = _Recorder(gm)
    try:
        with torch.no_grad():
            rec.run(x)
    except (RuntimeError, ValueError) as exc:
        raise ShapeError(f"input shape {tuple(input_shape)} does not fit the model: "
                         f"{str(exc).splitlines()[0]}") from None
    return rec.values


def to_nodes(gm: fx.GraphModule, values: dict[str, object]) -> tuple[list[Node], dict[str, str], str]:
    """The graph's nodes (topological), aliases of skipped operations, and the output's name."""
    modules = dict(gm.named_modules())
    names: dict[str, str] = {}  # fx name -> our node name (or the node it aliases)
    aliases: dict[str, str] = {}
    nodes: list[Node] = []
    used: dict[str, int] = {}
    output = None
    for n in gm.graph.nodes:
        if n.op == "output":
            output = n.args[0]
            break
        value = values.get(n.name)
        if not isinstance(value, torch.Tensor):
            continue  # shape arithmetic (size, dim, getitem on shapes)
        if n.op == "placeholder":  # named as forward's argument (`x`; `input` for Sequential)
            nodes.append(Node(str(n.target), "input", "input", out_shape=tuple(value.shape[1:])))
            names[n.name] = str(n.target)
            continue
        if value.dim() == 0 or value.shape[0] != PROBE_BATCH:
            raise ModelError(f"operation '{n.name}' mixes the samples of a batch (output shape "
                             f"{tuple(value.shape)} for a batch of {PROBE_BATCH}); keep dim 0 as "
                             "the batch in forward")
        tensor_args = _tensor_inputs(n, values)
        ins = tuple(names[a.name] for a in tensor_args)
        made = _convert(n, modules, values, ins)
        if made is None:  # skipped: the value is its input's
            names[n.name] = ins[0]
            aliases[n.target if n.op == "call_module" else n.name] = ins[0]
            continue
        if n.op != "call_module":
            made.name = _scoped_name(n)
        base = made.name
        used[base] = used.get(base, 0) + 1
        if used[base] > 1:  # a module called twice (a shared ReLU): name the calls apart
            made.name = f"{base}#{used[base]}"
        made.inputs = ins
        made.out_shape = tuple(value.shape[1:])
        made.in_shapes = tuple(tuple(values[a.name].shape[1:]) for a in tensor_args)
        if made.layer is not None:
            made.layer.name = made.name
            made.layer.in_shape, made.layer.out_shape = made.in_shapes[0], made.out_shape
        names[n.name] = made.name
        nodes.append(made)
    if not isinstance(output, fx.Node) or not isinstance(values.get(output.name), torch.Tensor):
        raise ModelError("the model's forward does not return one tensor; return a single "
                         "tensor (not a tuple or dict) from forward")
    return nodes, aliases, names[output.name]


def _scoped_name(n: fx.Node) -> str:
    """A functional call named inside the module that makes it: `stage1.0.relu`."""
    op = re.sub(r"_\d+$", "", n.name)
    stack = n.meta.get("nn_module_stack") or {}
    scope = next(reversed(stack.values()))[0] if stack else ""
    return f"{scope}.{op}" if scope else op


def _tensor_inputs(n: fx.Node, values) -> list[fx.Node]:
    found: list[fx.Node] = []

    def visit(a):
        if isinstance(a, fx.Node):
            if isinstance(values.get(a.name), torch.Tensor) and a not in found:
                found.append(a)
        elif isinstance(a, (list, tuple)):
            for b in a:
                visit(b)

    visit(n.args)
    visit(list(n.kwargs.values()))
    return found


def _convert(n: fx.Node, modules, values, ins) -> Node | None:
    """One fx operation as a node (without inputs and shapes), or None when skipped."""
    if n.op == "call_module":
        return _from_module(n.target, modules[n.target], ins)
    if n.op == "call_function":
        return _from_function(n, values, ins)
    if n.op == "call_method":
        return _from_method(n, ins)
    raise _unsupported(n.name, f"{n.op} {n.target}; parameters used directly in forward")


def _one_input(name: str, ins, what: str) -> None:
    if len(ins) != 1:
        raise _unsupported(name, f"{what} applied to {len(ins)} tensors")


def _from_module(name: str, m: nn.Module, ins) -> Node | None:
    kind = type(m)
    if isinstance(m, _SKIPPED_MODULES):
        return None
    _one_input(name, ins, kind.__name__)
    if kind in _AFFINE_MODULES:
        _check_avgpool(name, m)
        return Node(name, "affine", _AFFINE_MODULES[kind], layer=Layer(name, _AFFINE_MODULES[kind], m),
                    source=kind.__name__)
    if kind in _ACTIVATION_MODULES:
        act, module = _ACTIVATION_MODULES[kind](m)
        return Node(name, "activation", act, module=module, source=kind.__name__)
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return Node(name, "join", "reshape", source=kind.__name__)
    raise _unsupported(name, f"layer of type {kind.__name__}")


def _check_avgpool(name: str, m: nn.Module) -> None:
    if isinstance(m, nn.AvgPool2d) and (m.ceil_mode or m.divisor_override or
                                        (m.padding and not m.count_include_pad)):
        raise UnsupportedLayerError(
            f"layer '{name}': AvgPool2d with ceil_mode, divisor_override or "
            "count_include_pad=False is not affine-equivalent to a conv; use defaults")


def _from_function(n: fx.Node, values, ins) -> Node | None:
    f, name = n.target, n.name
    rest = n.args[1:]
    if f in _SKIPPED_FUNCTIONS:
        return None
    if f in _ADD:
        return _add_node(n, values, ins)
    if f in _MUL or f in _DIV:
        return _scale_node(n, values, ins)
    if f is torch.cat or f is torch.concat:
        dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
        return Node(name, "join", "cat", params={"dim": dim}, source="cat")
    _one_input(name, ins, getattr(f, "__name__", str(f)))
    if f in _ACTIVATION_FUNCTIONS:
        act, module = _ACTIVATION_FUNCTIONS[f](rest, n.kwargs)
        return Node(name, "activation", act, module=module, source=f.__name__)
    if f in _AFFINE_FUNCTIONS:
        module = _AFFINE_FUNCTIONS[f](rest, n.kwargs)
        kind = _AFFINE_MODULES[type(module)]
        _check_avgpool(name, module)
        return Node(name, "affine", kind, layer=Layer(name, kind, module), source=f.__name__)
    if f in _RESHAPE_FUNCTIONS:
        return Node(name, "join", "reshape", source=f.__name__)
    if f is torch.mean:
        return _mean_node(n)
    if f is operator.neg:
        return Node(name, "join", "scale", params={"scale": -1.0}, source="neg")
    raise _unsupported(name, f"function {getattr(f, '__name__', f)}")


def _from_method(n: fx.Node, ins) -> Node | None:
    name, method = n.name, n.target
    if method in _SKIPPED_METHODS:
        return None
    _one_input(name, ins, f".{method}()")
    if method in _ACTIVATION_METHODS:
        act = _ACTIVATION_METHODS[method]
        module = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[act]()
        return Node(name, "activation", act, module=module, source=f".{method}()")
    if method in _RESHAPE_METHODS:
        return Node(name, "join", "reshape", source=f".{method}()")
    if method == "mean":
        return _mean_node(n)
    raise _unsupported(name, f"method .{method}()")


def _add_node(n: fx.Node, values, ins) -> Node:
    sign = _ADD[n.target]
    a, b = (n.args + (None,))[:2]
    if len(ins) != 2 or not all(isinstance(v, fx.Node) for v in (a, b)):
        raise _unsupported(n.name, "adds a constant to a tensor (an affine shift with no "
                                   "weights); fold it into a bias")
    alpha = n.kwargs.get("alpha", n.args[2] if len(n.args) > 2 else 1.0)
    return Node(n.name, "join", "add", params={"weights": (1.0, sign * float(alpha))},
                source="sub" if sign < 0 else "add")


def _scale_node(n: fx.Node, values, ins) -> Node:
    a, b = n.args[:2]
    tensors = [v for v in (a, b) if isinstance(v, fx.Node)]
    number = a if not isinstance(a, fx.Node) else b
    if len(tensors) != 1 or not isinstance(number, (int, float)):
        raise _unsupported(n.name, "multiplies tensors together (not affine in the input); "
                                   "only products with a Python number are")
    if n.target in _DIV:
        if tensors[0] is not a:
            raise _unsupported(n.name, "divides a number by a tensor")
        number = 1.0 / number
    return Node(n.name, "join", "scale", params={"scale": float(number)}, source="mul")


def _mean_node(n: fx.Node) -> Node:
    dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
    keepdim = n.kwargs.get("keepdim", n.args[2] if len(n.args) > 2 else False)
    if dim is None:
        raise ModelError(f"operation '{n.name}' averages over the whole batch; give mean a dim")
    return Node(n.name, "join", "mean", params={"dim": dim, "keepdim": bool(keepdim)}, source="mean")
