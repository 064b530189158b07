"""Read ONNX files: onnx2torch turns the graph into a torch.fx module, imported like any other.

Needs the `onnx` extra (`pip install 'reluscope[onnx]'`: onnx and onnx2torch). The
converted module's submodules are renamed after the ONNX node names, which
`torch.onnx.export` builds from the model's module paths: `/stage1/stage1.0/conv1/Conv`
becomes `stage1.0.conv1`, `/0/Gemm` becomes `0`, so nodes are named as in the model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import fx, nn

from ..errors import CheckpointError, ModelError, UnsupportedLayerError

EXTRA = "reading ONNX needs the onnx extra: pip install 'reluscope[onnx]'"


def is_onnx(path: Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def read_onnx(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The model of an ONNX file as an fx module (eval mode), and its per-sample input shape
    when the file gives one."""
    onnx, onnx2torch = _modules()
    from onnx2torch.onnx_graph import OnnxGraph

    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read '{path}': the file is corrupt or not an ONNX model "
                              f"({type(exc).__name__}); re-export it") from None
    shape = _input_shape(proto, path)
    _inline_identities(proto)
    gm, proto = _convert(proto, path, onnx, onnx2torch)
    reshapes = _reshape_targets(proto, onnx)
    names = {unique: node.name or unique for unique, node in OnnxGraph(proto.graph).nodes.items()}
    _simplify_reshapes(gm, names, dict(zip(names, reshapes)))
    return _readable(gm, names).eval(), shape


# onnx2torch converts most operations only up to here (e.g. not Constant-19, Identity-19).
CONVERTED_OPSET = 17


def _convert(proto, path, onnx, onnx2torch):
    """onnx2torch's fx module of `proto`, and the model it converted: `proto` itself, or
    `proto` taken down to opset 17 when onnx2torch lacks a converter for a newer version."""
    try:
        return onnx2torch.convert(proto), proto
    except NotImplementedError as exc:
        opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
        if opset > CONVERTED_OPSET:
            try:
                converter = importlib.import_module("onnx.version_converter")
                older = converter.convert_version(proto, CONVERTED_OPSET)
                return onnx2torch.convert(older), older
            except Exception:
                pass
        found = re.search(r"domain='([^']*)', operation_type='([^']*)', version=(\d+)", str(exc))
        what = (f"has no converter for ONNX operation {found[2]} (domain {found[1] or 'ai.onnx'}, "
                f"version {found[3]})" if found else f"cannot convert it ({_first_line(exc)})")
        raise UnsupportedLayerError(
            f"'{path}': onnx2torch {what}; re-export with torch.onnx.export(..., opset_version=17) "
            "or replace the operation") from None
    except Exception as exc:
        raise ModelError(f"cannot convert ONNX model '{path}' to PyTorch ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _modules():
    """`onnx` and `onnx2torch`, or one ModelError saying how to install them."""
    if any(importlib.util.find_spec(m) is None for m in ("onnx", "onnx2torch")):
        raise ModelError(EXTRA)
    try:
        onnx = importlib.import_module("onnx")
        if "onnx2torch" not in sys.modules:
            try:  # onnx2torch imports torchvision for its NMS and RoiAlign converters only
                importlib.import_module("torchvision")
            except Exception:  # absent, or built for another torch: do without those two
                with _without_torchvision():
                    importlib.import_module("onnx2torch")
        return onnx, importlib.import_module("onnx2torch")
    except Exception as exc:
        raise ModelError(f"cannot import onnx/onnx2torch ({type(exc).__name__}: {_first_line(exc)}); "
                         "reinstall the extra: pip install 'reluscope[onnx]'") from None


def _torchvision_missing(*args, **kwargs):
    raise ModelError("this ONNX model uses NMS or RoiAlign, which need a torchvision matching "
                     "your torch; reluscope cannot analyse them anyway")


@contextmanager
def _without_torchvision():
    """Stand-ins for `torchvision` and `torchvision.ops` while onnx2torch is imported."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == "torchvision"}
    stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = _torchvision_missing
    stub.ops = ops
    sys.modules.update({"torchvision": stub, "torchvision.ops": ops})
    try:
        yield
    finally:
        for k in ("torchvision", "torchvision.ops"):
            sys.modules.pop(k, None)
        sys.modules.update(saved)


def _input_shape(proto, path) -> tuple[int, ...] | None:
    """The per-sample input shape the file states (all dims after the batch fixed), else None."""
    inits = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in inits]
    if len(inputs) != 1:
        raise ModelError(f"the ONNX model '{path}' takes {len(inputs)} inputs; reluscope reads "
                         "models with one input tensor")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims[1:])
    return shape if len(dims) > 1 and all(s > 0 for s in shape) else None


def _inline_identities(proto) -> None:
    """Identity nodes on initializers (torch.onnx.export shares equal constants so) become
    initializers themselves: onnx2torch expects a conv's bias to be an initializer."""
    inits = {t.name: t for t in proto.graph.initializer}
    keep = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits and node.output[0] not in inits:
            copy = type(inits[node.input[0]])()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            proto.graph.initializer.append(copy)
            inits[copy.name] = copy
        else:
            keep.append(node)
    if len(keep) != len(proto.graph.node):
        del proto.graph.node[:]
        proto.graph.node.extend(keep)


_BATCH = "batch"


def _reshape_targets(proto, onnx) -> list[tuple[int, ...] | None]:
    """For each node, the per-sample shape a Reshape node produces (None: not a Reshape, or a
    shape that depends on more than the batch size).

    `x.view(x.size(0), -1)` exports as Shape -> Gather -> Unsqueeze -> Concat -> Reshape;
    this follows such shape arithmetic with the batch size as a symbol."""
    from onnx import numpy_helper

    try:
        inferred = onnx.shape_inference.infer_shapes(proto).graph
    except Exception:  # no shapes: only constant reshape targets are understood
        inferred = proto.graph
    dims = {v.name: tuple(d.dim_value if d.HasField("dim_value") else None
                          for d in v.type.tensor_type.shape.dim)
            for v in (*inferred.value_info, *inferred.input, *inferred.output)}
    inits = {t.name for t in proto.graph.initializer}
    graph_input = next((v.name for v in proto.graph.input if v.name not in inits), None)
    batch = (dims.get(graph_input) or (None,))[0]
    known: dict[str, list] = {}  # value name -> its entries (ints, or _BATCH)

    def ints(array):
        return array.reshape(-1).tolist() if array.dtype.kind in "iu" else None

    for t in proto.graph.initializer:
        if (v := ints(numpy_helper.to_array(t))) is not None:
            known[t.name] = v
    out: list[tuple[int, ...] | None] = []
    for node in proto.graph.node:
        op, ins = node.op_type, [known.get(i) for i in node.input]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        value = None
        if op == "Constant" and "value" in attrs:
            value = ints(numpy_helper.to_array(attrs["value"]))
        elif op == "Shape" and not {"start", "end"} & set(attrs) and dims.get(node.input[0]):
            value = [_BATCH, *dims[node.input[0]][1:]]
        elif op == "Gather" and attrs.get("axis", 0) == 0 and ins[0] is not None and ins[1] is not None:
            value = [ins[0][i] for i in ins[1]]
        elif op in ("Unsqueeze", "Squeeze", "Cast", "Identity") and ins and ins[0] is not None:
            value = ins[0]
        elif op == "Concat" and ins and all(v is not None for v in ins):
            value = [e for v in ins for e in v]
        if value is not None and node.output:
            known[node.output[0]] = value
        out.append(_per_sample(ins[1], dims.get(node.input[0]), batch, attrs)
                   if op == "Reshape" and len(ins) > 1 else None)
    return out


def _per_sample(target, data_dims, batch, attrs) -> tuple[int, ...] | None:
    """A Reshape target `[batch, d1, ...]` as the per-sample shape `(d1, ...)`, else None."""
    if not target or None in target:
        return None
    first, rest = target[0], list(target[1:])
    if not (first in (_BATCH, 0, -1) or (batch and first == batch)) or _BATCH in rest:
        return None
    for i, d in enumerate(rest, 1):
        if d == 0 and not attrs.get("allowzero"):  # 0: copy the input's dim
            if not data_dims or i >= len(data_dims) or data_dims[i] is None:
                return None
            rest[i - 1] = data_dims[i]
    if rest.count(-1) + (first == -1) > 1 or any(d < -1 for d in rest):
        return None
    return tuple(rest)


class Reshape(nn.Module):
    """`x.reshape(batch, *shape)`: an ONNX Reshape whose target is fixed but for the batch."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), *self.shape)


def _simplify_reshapes(gm: fx.GraphModule, names: dict[str, str], targets: dict) -> None:
    """onnx2torch's Reshape (untraceable: it branches on the shape's values) replaced by
    `Reshape`; the shape arithmetic that fed it is dropped."""
    changed = False
    for n in gm.graph.nodes:
        if n.op == "call_module" and type(gm.get_submodule(n.target)).__name__ == "OnnxReshape":
            shape = targets.get(n.target)
            if shape is None:
                raise UnsupportedLayerError(
                    f"ONNX node '{names.get(n.target, n.target)}' reshapes to a shape that depends on "
                    "more than the batch size; export a model that flattens with torch.flatten(x, 1) "
                    "or reshapes to a fixed per-sample shape")
            setattr(gm, n.target, Reshape(shape))
            n.args, n.kwargs = n.args[:1], {}
            changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.delete_all_unused_submodules()
        gm.recompile()


def _scope(onnx_name: str) -> tuple[tuple[str, ...], str]:
    """`/stage1/stage1.0/conv1/Conv` -> (('stage1', '0', 'conv1'), 'conv'): the module path
    (torch.onnx.export writes a child either by its own name or by its full path) and the
    operation's label."""
    *parts, label = onnx_name.strip("/").split("/")
    path: list[str] = []
    for part in parts:
        if path and part.startswith(".".join(path) + "."):
            path = part.split(".")
        else:
            path += part.split(".")
    return tuple(path), label.replace(".", "_").lower()


def _is_leaf(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn")


class _Inliner(fx.Tracer):
    """Traces into the given modules only."""

    def __init__(self, inline: set[int]):
        super().__init__()
        self.inline = inline

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return id(m) not in self.inline


def _readable(gm: fx.GraphModule, names: dict[str, str]) -> fx.GraphModule:
    """`gm` with its submodules moved to the model paths in the ONNX node names.

    A scope with one operation and nothing inside gets the scope's path (`stage1.0.conv1`);
    an operation that runs torch functions (add, mean) gets the path of the block it is in,
    so its calls are named `stage1.0.add`, and outside any block it is inlined (`add`, as
    for a functional call in forward); any other is `scope.label`. On any clash: `gm`."""
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and n.target in names]
    scopes = {n.target: _scope(names[n.target]) for n in calls}
    direct: dict[tuple[str, ...], list[str]] = {}
    for target, (path, _) in scopes.items():
        direct.setdefault(path, []).append(target)
    has_children = {p[:i] for p in direct for i in range(len(p))}
    modules = dict(gm.named_modules())
    paths: dict[str, str] = {}
    inline: set[int] = set()
    for target, (path, label) in scopes.items():
        traced = [t for t in direct[path] if not _is_leaf(modules[t])]
        if path and direct[path] == [target] and path not in has_children:
            new = path
        elif path and traced == [target]:
            new = path
        else:
            new = (*path, label)
            if not path and not _is_leaf(modules[target]):
                inline.add(id(modules[target]))
        paths[target] = ".".join(new)
    reserved = set(dir(nn.Module())) | {"initializers"}
    if (len(set(paths.values())) != len(paths)
            or any(not c or c in reserved for p in paths.values() for c in p.split("."))):
        return gm
    root = nn.Module()
    if hasattr(gm, "initializers"):
        root.initializers = gm.initializers
    for target in sorted(paths, key=lambda t: paths[t].count(".")):
        *prefix, field = paths[target].split(".")
        parent = root
        for c in prefix:
            if c not in parent._modules:
                parent.add_module(c, nn.Module())
            parent = parent._modules[c]
        if field in parent._modules:  # already a container of another path
            return gm
        parent.add_module(field, modules[target])
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in gm.graph.nodes:
        env[n] = graph.node_copy(n, lambda a: env[a])
        if n.op == "call_module" and n.target in paths:
            env[n].target = paths[n.target]
    try:
        out = fx.GraphModule(root, graph)
        if inline:
            out = fx.GraphModule(out, _Inliner(inline).trace(out))
    except Exception:  # a name torch refuses, an operation fx cannot trace: keep onnx2torch's
        return gm
    if any(id(modules[t]) not in inline and out.get_submodule(p) is not modules[t]
           for t, p in paths.items()):
        return gm
    return out
