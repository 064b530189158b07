"""Import any fx-traceable model (Sequential, custom forward, TorchScript) as a graph.

The model's forward is read with torch.fx into a graph of affine, activation and join
nodes (`Graph`); batch norms are folded into a neighbour where exact. A graph that is a
chain of affine maps and ReLU-like activations is returned as a `ReluNet`. The result
is checked against the model itself on a random input, so an unrecognised operation can
never pass silently.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ..errors import ModelError, UnsupportedLayerError
from . import _fx
from ._files import read_model_file
from ._fold import fold_batch_norms
from ._graph import Graph
from ._layer import placement
from ._relunet import ReluNet, chain_layers

SUPPORTED = _fx.SUPPORTED


def _check_finite(model: nn.Module) -> None:
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ModelError(f"'{name}' has {bad} NaN or infinite values; the checkpoint is "
                             "corrupt or training diverged")


@contextmanager
def _eval_mode(model: nn.Module):
    """The model in eval mode (running BN statistics, no dropout), restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _check_linear_inputs(graph: Graph) -> None:
    for node in graph.affine_nodes():
        if node.kind == "linear" and len(node.in_shapes[0]) != 1:
            raise UnsupportedLayerError(
                f"Linear layer '{node.name}' gets a {len(node.in_shapes[0])}-D input; "
                "insert nn.Flatten before it")


def _check_equivalent(graph: Graph, model: nn.Module) -> None:
    """The graph view must reproduce the model (in eval mode) on a random input."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, *graph.input_shape, generator=gen).to(graph.device, graph.dtype)
    with _eval_mode(model), torch.no_grad():
        want, got = model(x), graph(x)
    if not isinstance(want, torch.Tensor) or want.shape != got.shape:
        raise ModelError("the imported graph does not reproduce the model's output shape; the "
                         "forward must be built of " + SUPPORTED)
    scale = want.abs().max().clamp_min(1.0)
    err = float((want - got).abs().max() / scale)
    tol = 1e-4 if graph.dtype == torch.float32 else 1e-10
    if err > tol:
        raise ModelError(f"the imported graph differs from the model's output (relative "
                         f"error {err:.2e}); the forward uses an operation outside: " + SUPPORTED)


def load_module(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Import an `nn.Module` (see `load`)."""
    if isinstance(model, torch.jit.ScriptModule):
        model = _from_torchscript(model)
    _check_finite(model)
    gm = _fx.trace(model)
    shape = tuple(input_shape) if input_shape is not None else _fx.infer_input_shape(gm)
    with _eval_mode(model):
        values = _fx.record(gm, shape, *placement(model))
    nodes, aliases, output = _fx.to_nodes(gm, values)
    nodes, aliases = fold_batch_norms(_reachable(nodes, output), aliases)
    graph = Graph(model, nodes, shape, aliases)
    if not graph.affine_nodes():
        raise ModelError("the model has no affine layer (Linear, Conv2d, ...); nothing to analyse")
    _check_linear_inputs(graph)
    layers = chain_layers(graph)
    if layers is not None:
        graph = ReluNet(graph, layers)
    _check_equivalent(graph, model)
    return graph


def _reachable(nodes, output: str):
    """The nodes the output depends on (dead branches of forward dropped), output last."""
    by_name = {n.name: n for n in nodes}
    keep, todo = set(), [output]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(by_name[name].inputs)
    kept = [n for n in nodes if n.name in keep]
    if kept[-1].name != output:
        raise ModelError("the model's output is not its last operation; return one tensor")
    if kept[0].op != "input":
        raise ModelError("the model's output does not depend on its input")
    return kept


def load(source, input_shape: tuple[int, ...] | None = None, map_location=None, *,
         arch=None, trust_pickle: bool | None = None) -> Graph:
    """Import a model as a graph of named nodes.

    Arguments:
        source: an `nn.Module`, or the path of a model file, read without running code
            in it (see `read_model_file`): a reluscope checkpoint, a state_dict (`.pt` or
            `.safetensors`) with `arch`, TorchScript (`torch.jit.save`), ONNX (`.onnx`,
            needs the onnx extra); a whole pickled module only with `trust_pickle`.
        input_shape: per-sample input shape, e.g. `(3, 32, 32)`; inferred for models
            that start with a Linear layer or come from a reluscope checkpoint.
        map_location: where to load tensors of a file (default: where they were saved).
        arch: a state_dict's architecture: a builder spec (`resnet20`, `mlp:256-256`)
            or a callable returning the module.
        trust_pickle: allow unpickling a whole pickled module (runs code named in the
            file); default from the environment variable RELUSCOPE_TRUST_PICKLE.

    Returns:
        A `Graph` sharing the model's parameters; a `ReluNet` (a graph with one path and
        a layer table) when the model is a chain of affine maps and ReLU-like activations.

    >>> from reluscope import nets
    >>> net = nets.load(nets.mlp([4, 8, 3]))
    >>> [layer.activation for layer in net]
    ['relu', 'identity']
    >>> [node.name for node in net.nodes]
    ['input', '0', '1', '2', '3']
    """
    if isinstance(source, nn.Module):
        return load_module(source, input_shape)
    file = read_model_file(source, map_location, arch=arch, input_shape=input_shape,
                           trust_pickle=trust_pickle)
    return load_module(file.model, input_shape or file.input_shape)


class _Unrebuildable(Exception):
    """A scripted module whose configuration cannot be read back."""


_MISSING = object()

# The aten call that a traced module's forward makes, and where each setting sits in it.
_SCRIPT_OPS = {
    "Conv1d": ("aten::_convolution", "aten::conv1d"),
    "Conv2d": ("aten::_convolution", "aten::conv2d"),
    "Flatten": ("aten::flatten",),
    "LeakyReLU": ("aten::leaky_relu", "aten::leaky_relu_"),
    "MaxPool2d": ("aten::max_pool2d",),
    "AvgPool2d": ("aten::avg_pool2d",),
    "AdaptiveAvgPool2d": ("aten::adaptive_avg_pool2d",),
    "BatchNorm1d": ("aten::batch_norm",),
    "BatchNorm2d": ("aten::batch_norm",),
    "GELU": ("aten::gelu",),
}
_ARG_INDEX = {  # (op, setting) -> argument index
    **{(op, k): i for op in ("aten::_convolution", "aten::conv1d", "aten::conv2d")
       for k, i in (("stride", 3), ("padding", 4), ("dilation", 5))},
    ("aten::_convolution", "groups"): 8, ("aten::conv1d", "groups"): 6, ("aten::conv2d", "groups"): 6,
    ("aten::flatten", "start_dim"): 1, ("aten::flatten", "end_dim"): 2,
    ("aten::leaky_relu", "negative_slope"): 1, ("aten::leaky_relu_", "negative_slope"): 1,
    **{("aten::max_pool2d", k): i for i, k in enumerate(
        ("kernel_size", "stride", "padding", "dilation", "ceil_mode"), 1)},
    **{("aten::avg_pool2d", k): i for i, k in enumerate(
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"), 1)},
    ("aten::adaptive_avg_pool2d", "output_size"): 1,
    ("aten::batch_norm", "momentum"): 6, ("aten::batch_norm", "eps"): 7,
    ("aten::gelu", "approximate"): 1,
}
# aten calls a traced module may make besides its main one without changing what it computes.
_HARMLESS_OPS = ("prim::", "aten::size", "aten::Int", "aten::dropout", "aten::feature_dropout")


def _constant(value):
    node = value.node()
    if node.kind() == "prim::Constant":
        return value.toIValue()
    if node.kind() == "prim::ListConstruct":
        return tuple(_constant(v) for v in node.inputs())
    raise _Unrebuildable("a setting computed at run time")


def _script_call(s, kind: str):
    """The main aten call of a traced module's forward, after checking it makes no other."""
    try:
        graph = s.graph
    except (AttributeError, RuntimeError):
        raise _Unrebuildable("no forward graph") from None
    ops = _SCRIPT_OPS.get(kind, ())
    calls = [n for n in graph.nodes() if n.kind() in ops]
    others = sorted({n.kind() for n in graph.nodes()
                     if n.kind() not in ops and not n.kind().startswith(_HARMLESS_OPS)})
    if len(calls) != 1 or others:
        raise _Unrebuildable(f"its forward calls {', '.join(others) or 'no ' + ' or '.join(ops)}")
    return calls[0]


def _setting(s, kind: str, name: str, default=_MISSING):
    """A module setting: the scripted attribute, else the constant the traced graph passes."""
    try:
        return getattr(s, name)
    except (AttributeError, RuntimeError):
        pass
    if kind in _SCRIPT_OPS:
        call = _script_call(s, kind)
        index = _ARG_INDEX.get((call.kind(), name))
        args = list(call.inputs())
        if index is not None and index < len(args):
            return _constant(args[index])
    if default is not _MISSING:
        return default
    raise _Unrebuildable(f"its setting '{name}' is not recorded")


def _conv(cls):
    def build(s, sd):
        kind = cls.__name__
        w = sd["weight"]
        groups = int(_setting(s, kind, "groups", 1))
        mode = _setting(s, kind, "padding_mode", "zeros")
        return cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), _setting(s, kind, "stride"),
                   _setting(s, kind, "padding"), _setting(s, kind, "dilation"), groups,
                   bias="bias" in sd and sd["bias"] is not None, padding_mode=mode)
    return build


def _batch_norm(cls):
    def build(s, sd):
        kind = cls.__name__
        n = sd["running_mean"].numel()
        return cls(n, _setting(s, kind, "eps", 1e-5), _setting(s, kind, "momentum", 0.1),
                   affine="weight" in sd, track_running_stats=True)
    return build


def _pool(cls, names):
    def build(s, sd):
        kind = cls.__name__
        args = {k: _setting(s, kind, k) for k in names}
        if args.get("stride") in ((), None):
            args["stride"] = None
        return cls(**args)
    return build


_SCRIPT_REBUILD = {
    "Linear": lambda s, sd: nn.Linear(sd["weight"].shape[1], sd["weight"].shape[0], bias="bias" in sd),
    "Conv1d": _conv(nn.Conv1d),
    "Conv2d": _conv(nn.Conv2d),
    "ReLU": lambda s, sd: nn.ReLU(),
    "ReLU6": lambda s, sd: nn.ReLU6(),
    "Tanh": lambda s, sd: nn.Tanh(),
    "Sigmoid": lambda s, sd: nn.Sigmoid(),
    "SiLU": lambda s, sd: nn.SiLU(),
    "GELU": lambda s, sd: nn.GELU(approximate=_setting(s, "GELU", "approximate", "none")),
    "LeakyReLU": lambda s, sd: nn.LeakyReLU(_setting(s, "LeakyReLU", "negative_slope")),
    "Flatten": lambda s, sd: nn.Flatten(_setting(s, "Flatten", "start_dim", 1),
                                        _setting(s, "Flatten", "end_dim", -1)),
    "Dropout": lambda s, sd: nn.Identity(),
    "Identity": lambda s, sd: nn.Identity(),
    "MaxPool2d": _pool(nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "AvgPool2d": _pool(nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "AdaptiveAvgPool2d": _pool(nn.AdaptiveAvgPool2d, ("output_size",)),
    "BatchNorm1d": _batch_norm(nn.BatchNorm1d),
    "BatchNorm2d": _batch_norm(nn.BatchNorm2d),
}


def _from_torchscript(script: torch.jit.ScriptModule) -> nn.Module:
    """Rebuild an eager Sequential from a scripted or traced one (its graph is not fx-traceable).

    Settings come from the scripted module's attributes or, for traced modules (which keep
    none), from the constants their forward graph passes to its aten call; sizes come from
    the state_dict. Anything else raises one `UnsupportedLayerError` naming the module.
    """
    def rebuild(s, path: str) -> nn.Module:
        kind = s.original_name
        if kind == "Sequential":
            return nn.Sequential(*[rebuild(c, f"{path}.{n}" if path else n) for n, c in s.named_children()])
        where = f"TorchScript module '{path or 'model'}' of type {kind}"
        if kind not in _SCRIPT_REBUILD:
            raise UnsupportedLayerError(
                f"{where} is not supported; reluscope reads scripted or traced Sequentials of: "
                f"{', '.join(_SCRIPT_REBUILD)} (or save the eager model's state_dict and load it with "
                "--arch / arch=)")
        sd = s.state_dict()
        try:
            m = _SCRIPT_REBUILD[kind](s, sd)
            m.load_state_dict(sd)
        except (_Unrebuildable, KeyError, TypeError, ValueError, RuntimeError) as err:
            raise UnsupportedLayerError(
                f"{where} cannot be rebuilt ({err}); save the eager model's state_dict instead and "
                "load it with --arch / arch=") from None
        return m

    model = rebuild(script, "")
    model.train(script.training)
    return model.to(next(iter(script.state_dict().values()), torch.empty(0)).device)
