"""Import any feed-forward model (Sequential, custom forward, TorchScript) as a ReluNet.

The model's graph is read with torch.fx, reduced to a chain of affine maps, batch
norms and activations, and grouped into `Layer`s. The result is checked against the
model itself on a random input, so an unrecognised operation can never pass silently.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import CheckpointError, ModelError, ShapeError, UnsupportedLayerError
from ._layer import Layer
from ._locally import LocallyConnected2d
from ._relunet import ReluNet

_AFFINE = (nn.Linear, nn.Conv2d, nn.AvgPool2d, LocallyConnected2d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_ACTIVATION = (nn.ReLU, nn.LeakyReLU, nn.MaxPool2d)
_NOOP = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
SUPPORTED = ("Linear, Conv2d, AvgPool2d, LocallyConnected2d, BatchNorm1d/2d (eval, folded), "
             "ReLU, LeakyReLU, MaxPool2d, Flatten, Dropout, Identity")
_KIND = {nn.Linear: "linear", nn.Conv2d: "conv2d", nn.AvgPool2d: "avgpool2d",
         LocallyConnected2d: "locally_connected"}
_FUNCTIONAL = {
    F.relu: lambda a, k: nn.ReLU(),
    torch.relu: lambda a, k: nn.ReLU(),
    F.leaky_relu: lambda a, k: nn.LeakyReLU(*a, **k),
    F.max_pool2d: lambda a, k: nn.MaxPool2d(*a, **k),
    F.avg_pool2d: lambda a, k: nn.AvgPool2d(*a, **k),
    F.dropout: lambda a, k: nn.Identity(),
    torch.flatten: lambda a, k: nn.Flatten(*a, **k),
}
_METHODS = {"relu": nn.ReLU, "relu_": nn.ReLU, "flatten": nn.Flatten, "view": nn.Flatten,
            "reshape": nn.Flatten}


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LocallyConnected2d) or super().is_leaf_module(m, qualname)


@dataclass
class _Op:
    name: str
    module: nn.Module


def _unsupported(name: str, obj) -> UnsupportedLayerError:
    kind = obj.__name__ if callable(obj) and hasattr(obj, "__name__") else type(obj).__name__
    return UnsupportedLayerError(
        f"layer '{name}' of type {kind} is not supported; reluscope reads feed-forward "
        f"chains of: {SUPPORTED}")


def _chain(model: nn.Module) -> list[_Op]:
    """The model's operations in order, as modules, after checking it is a plain chain."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.Embedding)):
            raise _unsupported(name, m)
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ModelError(
            f"cannot trace the forward of {type(model).__name__} with torch.fx ({exc}); "
            "remove data-dependent control flow or pass an nn.Sequential") from None
    modules = dict(model.named_modules())
    ops: list[_Op] = []
    current = None  # the node carrying the activations along the chain
    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise ModelError("models with several inputs are not supported; wrap it so "
                                 "forward takes one tensor")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise ModelError("the model's output is not the end of its layer chain; "
                                 "return one tensor from forward")
            break
        if node.op == "call_method" and node.target in ("size", "dim"):
            continue  # shape queries feed view(); they carry no activations
        if not node.args or node.args[0] is not current:
            if current in node.all_input_nodes:
                raise ModelError(
                    f"operation '{node.name}' branches off the layer chain (a residual or "
                    "concatenation); reluscope reads feed-forward chains only")
            raise _unsupported(node.name, node.target)
        if node.op == "call_module":
            ops.append(_Op(node.target, modules[node.target]))
        elif node.op == "call_function" and node.target in _FUNCTIONAL:
            ops.append(_Op(node.name, _FUNCTIONAL[node.target](node.args[1:], node.kwargs)))
        elif node.op == "call_method" and node.target in _METHODS:
            ops.append(_Op(node.name, nn.Flatten() if _METHODS[node.target] is nn.Flatten
                           else nn.ReLU()))
        else:
            target = node.target if callable(node.target) else f"{node.op} {node.target}"
            if node.target in (operator.add, torch.add, torch.cat):
                raise ModelError(f"operation '{node.name}' ({node.target.__name__}) makes the "
                                 "model a non-chain; reluscope reads feed-forward chains only")
            raise _unsupported(node.name, target)
        current = node
    return ops


def _group(ops: list[_Op]) -> list[Layer]:
    """Group the chain into affine layers with folded batch norms and activations."""
    layers: list[Layer] = []
    flatten, bn_before = False, None
    for op in ops:
        m = op.module
        if isinstance(m, _AFFINE):
            if isinstance(m, nn.AvgPool2d) and (m.ceil_mode or m.divisor_override or
                                                (m.padding and not m.count_include_pad)):
                raise UnsupportedLayerError(
                    f"layer '{op.name}': AvgPool2d with ceil_mode, divisor_override or "
                    "count_include_pad=False is not affine-equivalent to a conv; use defaults")
            if bn_before is not None and isinstance(m, nn.Conv2d) and any(m.padding):
                raise UnsupportedLayerError(
                    f"batch norm before the padded conv '{op.name}' cannot be folded exactly; "
                    "move the batch norm after the conv")
            layers.append(Layer(op.name, _KIND[type(m)], m, flatten=flatten, bn_before=bn_before))
            flatten, bn_before = False, None
        elif isinstance(m, _BATCHNORM):
            last = layers[-1] if layers else None
            if last is not None and not last.post and last.bn_after is None and not flatten:
                last.bn_after = m
            elif bn_before is None:
                bn_before = m
            else:
                raise UnsupportedLayerError(f"two batch norms in a row at '{op.name}'")
        elif isinstance(m, _ACTIVATION):
            if not layers or flatten or bn_before is not None:
                raise UnsupportedLayerError(
                    f"activation '{op.name}' does not follow an affine layer; reluscope "
                    "reads chains of affine map -> activation")
            layers[-1].post.append(m)
        elif isinstance(m, nn.Flatten):
            flatten = True
        elif isinstance(m, _NOOP):
            continue
        else:
            raise _unsupported(op.name, m)
    if bn_before is not None:
        raise UnsupportedLayerError("the model ends with a batch norm; it has no affine map to fold into")
    if not layers:
        raise ModelError("the model has no affine layer (Linear, Conv2d, ...)")
    return layers


def _infer_input_shape(layers: list[Layer]) -> tuple[int, ...]:
    m = layers[0].module
    if isinstance(m, nn.Linear):
        return (m.in_features,)
    if isinstance(m, LocallyConnected2d):
        return (m.in_channels, *m.in_size)
    raise ShapeError(
        f"cannot infer the input shape of a model starting with {type(m).__name__}; "
        "pass input_shape=(C, H, W) (CLI: --data or --input-shape)")


def _check_finite(model: nn.Module) -> None:
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ModelError(f"'{name}' has {bad} NaN or infinite values; the checkpoint is "
                             "corrupt or training diverged")


def _record_shapes(net: ReluNet) -> None:
    x = torch.zeros(2, *net.input_shape, device=net.device, dtype=net.dtype)
    with torch.no_grad():
        for layer in net.layers:
            layer.in_shape = tuple(x.flatten(1).shape[1:] if layer.flatten else x.shape[1:])
            if layer.kind == "linear" and len(layer.in_shape) != 1:
                raise UnsupportedLayerError(
                    f"Linear layer '{layer.name}' gets a {len(layer.in_shape)}-D input; "
                    "insert nn.Flatten before it")
            try:
                z = layer.affine(x)
            except RuntimeError as exc:
                raise ShapeError(f"input shape {net.input_shape} does not fit layer "
                                 f"'{layer.name}': {str(exc).splitlines()[0]}") from None
            layer.out_shape = tuple(z.shape[1:])
            x = layer.activate(z)


def _check_equivalent(net: ReluNet, model: nn.Module) -> None:
    """The layer view must reproduce the model (in eval mode) on a random input."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, *net.input_shape, generator=gen).to(net.device, net.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want, got = model(x), net(x)
    finally:
        model.train(was_training)
    if not isinstance(want, torch.Tensor) or want.shape != got.shape:
        raise ModelError("the imported layers do not reproduce the model's output shape; the "
                         "forward must be a chain of " + SUPPORTED)
    scale = want.abs().max().clamp_min(1.0)
    err = float((want - got).abs().max() / scale)
    tol = 1e-4 if net.dtype == torch.float32 else 1e-10
    if err > tol:
        raise ModelError(f"the imported layers differ from the model's output (relative "
                         f"error {err:.2e}); the forward uses an operation outside: " + SUPPORTED)


def load_module(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> ReluNet:
    """Import an `nn.Module` (see `load`)."""
    if isinstance(model, torch.jit.ScriptModule):
        model = _from_torchscript(model)
    _check_finite(model)
    layers = _group(_chain(model))
    shape = tuple(input_shape) if input_shape is not None else _infer_input_shape(layers)
    net = ReluNet(model, layers, shape)
    _record_shapes(net)
    _check_equivalent(net, model)
    return net


def load(source, input_shape: tuple[int, ...] | None = None, map_location=None) -> ReluNet:
    """Import a model as a `ReluNet`.

    Arguments:
        source: an `nn.Module`, or the path of a file written by `torch.save` (whole
            module, or a reluscope checkpoint) or by `torch.jit.save` (TorchScript
            Sequential).
        input_shape: per-sample input shape, e.g. `(3, 32, 32)`; inferred for models
            that start with a Linear layer or come from a reluscope checkpoint.
        map_location: where to load tensors of a file (default: where they were saved).

    Returns:
        A `ReluNet` sharing the model's parameters.

    >>> from reluscope import nets
    >>> net = nets.load(nets.mlp([4, 8, 3]))
    >>> [layer.activation for layer in net]
    ['relu', 'identity']
    """
    if isinstance(source, nn.Module):
        return load_module(source, input_shape)
    file = read_model_file(source, map_location)
    return load_module(file.model, input_shape or file.input_shape)


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds: the model, and for reluscope checkpoints also the input
    shape, the metadata (training history, data spec) and the model at initialisation."""

    model: nn.Module
    input_shape: tuple[int, ...] | None = None
    meta: dict = field(default_factory=dict)
    init_model: nn.Module | None = None


def read_model_file(path, map_location=None) -> ModelFile:
    """Read a model file: reluscope checkpoint, whole pickled module, or TorchScript."""
    from ._checkpoint import is_checkpoint, model_from_checkpoint

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file '{path}' does not exist; give the path of a file "
                              "written by torch.save, torch.jit.save or `reluscope train`")
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # TorchScript is deprecated, still widely saved
                warnings.simplefilter("ignore", DeprecationWarning)
                return ModelFile(torch.jit.load(str(path), map_location=map_location))
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"cannot read '{path}': the file is corrupt or not a PyTorch "
                              f"file ({type(exc).__name__}); re-save the model") from None
    if is_checkpoint(obj):
        model, shape = model_from_checkpoint(obj, path)
        init = None
        if obj.get("init_state_dict") is not None:
            init = model_from_checkpoint(obj, path, key="init_state_dict")[0]
        return ModelFile(model, shape, obj.get("meta", {}), init)
    if isinstance(obj, nn.Module):
        return ModelFile(obj)
    if isinstance(obj, dict):
        raise CheckpointError(
            f"'{path}' holds a dict (a state_dict?), not a model; build the model, call "
            "load_state_dict, and pass the module, or save it whole with torch.save(model)")
    raise CheckpointError(f"'{path}' holds a {type(obj).__name__}, not a model")


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("constants.pkl") for n in z.namelist())


_SCRIPT_REBUILD = {
    "Linear": lambda s: nn.Linear(s.in_features, s.out_features, bias=s.bias is not None),
    "Conv2d": lambda s: nn.Conv2d(s.in_channels, s.out_channels, s.kernel_size, s.stride,
                                  s.padding, s.dilation, s.groups, bias=s.bias is not None),
    "ReLU": lambda s: nn.ReLU(),
    "LeakyReLU": lambda s: nn.LeakyReLU(s.negative_slope),
    "Flatten": lambda s: nn.Flatten(s.start_dim, s.end_dim),
    "Dropout": lambda s: nn.Identity(),
    "Identity": lambda s: nn.Identity(),
    "MaxPool2d": lambda s: nn.MaxPool2d(s.kernel_size, s.stride, s.padding, s.dilation,
                                        ceil_mode=s.ceil_mode),
    "AvgPool2d": lambda s: nn.AvgPool2d(s.kernel_size, s.stride, s.padding, s.ceil_mode,
                                        s.count_include_pad),
    "BatchNorm1d": lambda s: nn.BatchNorm1d(s.num_features, s.eps, affine=s.weight is not None),
    "BatchNorm2d": lambda s: nn.BatchNorm2d(s.num_features, s.eps, affine=s.weight is not None),
}


def _from_torchscript(script: torch.jit.ScriptModule) -> nn.Module:
    """Rebuild an eager Sequential from a scripted one (its graph is not fx-traceable)."""
    def rebuild(s) -> nn.Module:
        kind = s.original_name
        if kind == "Sequential":
            return nn.Sequential(*[rebuild(c) for c in s.children()])
        if kind not in _SCRIPT_REBUILD:
            raise UnsupportedLayerError(
                f"TorchScript module of type {kind} is not supported; reluscope reads scripted "
                f"Sequentials of: {SUPPORTED} (or save the eager model with torch.save)")
        m = _SCRIPT_REBUILD[kind](s)
        m.load_state_dict(s.state_dict())
        return m

    model = rebuild(script)
    return model.to(next(iter(script.state_dict().values()), torch.empty(0)).device)
