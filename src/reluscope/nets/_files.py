"""Model files, read safely: no file reluscope opens may run code unless the user opts in.

Safe by default: reluscope checkpoints and state_dicts (`torch.load(weights_only=True)`),
safetensors files, TorchScript archives and ONNX files (with the onnx extra). A whole
pickled module (`torch.save(model)`) can only be rebuilt by full unpickling, which runs
whatever code the file names: that needs `trust_pickle=True` (CLI `--trust-pickle`,
environment `RELUSCOPE_TRUST_PICKLE=1`).
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError

TRUST_ENV = "RELUSCOPE_TRUST_PICKLE"
SAFE_WAYS = ("save a state_dict and pass the architecture (--arch / arch=), or save with "
             "torch.jit.save or safetensors")


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds: the model, and for reluscope checkpoints also the input
    shape, the metadata (training history, data spec) and the model at initialisation."""

    model: nn.Module
    input_shape: tuple[int, ...] | None = None
    meta: dict = field(default_factory=dict)
    init_model: nn.Module | None = None


def trust_pickle_default() -> bool:
    """Whether the environment opts in to full unpickling (`RELUSCOPE_TRUST_PICKLE=1`)."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def read_model_file(path, map_location=None, *, arch: str | Callable[[], nn.Module] | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    trust_pickle: bool | None = None) -> ModelFile:
    """Read a model file without running code in it.

    Arguments:
        path: a reluscope checkpoint (`reluscope train`), a state_dict file (`.pt`, or
            `.safetensors`) with `arch`, a TorchScript archive (`torch.jit.save`), an ONNX
            file (onnx extra), or, with `trust_pickle`, a whole pickled module.
        map_location: where to load tensors (default: where they were saved).
        arch: for a state_dict: a builder spec (`mlp:256-256`, `cifar_cnn`, `resnet20`) or a
            callable returning the module to load the weights into.
        input_shape: per-sample input shape; a builder spec needs it (the CLI takes it
            from the data).
        trust_pickle: allow full unpickling of a whole pickled module, which runs code
            named in the file; default from `RELUSCOPE_TRUST_PICKLE`.
    """
    from ._onnx import is_onnx, read_onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file '{path}' does not exist; give the path of a file written "
                              "by torch.save, torch.jit.save, safetensors, torch.onnx.export or "
                              "`reluscope train`")
    if is_onnx(path):
        model, shape = read_onnx(path)
        movable = isinstance(map_location, (str, torch.device))
        return ModelFile(model.to(map_location) if movable else model, shape)
    if path.suffix.lower() == ".safetensors":
        return _from_state(_read_safetensors(path, map_location), path, arch, input_shape)
    if _is_torchscript(path):
        return ModelFile(_read_torchscript(path, map_location))
    obj = _torch_load(path, map_location, trust_pickle_default() if trust_pickle is None else trust_pickle)
    return _from_object(obj, path, arch, input_shape)


def _read_torchscript(path: Path, map_location) -> nn.Module:
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, still widely saved
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=map_location)
    except Exception as exc:
        raise CheckpointError(f"cannot read '{path}': the TorchScript archive is corrupt "
                              f"({type(exc).__name__}); re-save the model") from None


def _torch_load(path: Path, map_location, trust_pickle: bool):
    """`torch.load` with `weights_only=True`; a file that needs more is refused unless trusted."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc) and "Weights only" not in str(exc):
            raise CheckpointError(f"cannot read '{path}': the file is corrupt or not a PyTorch file "
                                  "(UnpicklingError); re-save the model") from None
        if not trust_pickle:
            raise CheckpointError(
                f"'{path}' is a whole pickled object: reading it runs code named in the file, so it "
                f"is refused by default; if you trust the file, pass --trust-pickle (trust_pickle=True, "
                f"or {TRUST_ENV}=1); to avoid it, {SAFE_WAYS}") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read '{path}': the file is corrupt or not a PyTorch file "
                              f"({type(exc).__name__}); re-save the model") from None
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"cannot unpickle '{path}' ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); the classes it "
                              "names must be importable") from None


def _from_object(obj, path: Path, arch, input_shape) -> ModelFile:
    from ._checkpoint import is_checkpoint, model_from_checkpoint

    if is_checkpoint(obj):
        model, shape = model_from_checkpoint(obj, path)
        init = None
        if obj.get("init_state_dict") is not None:
            init = model_from_checkpoint(obj, path, key="init_state_dict")[0]
        return ModelFile(model, shape, obj.get("meta", {}), init)
    if isinstance(obj, nn.Module):
        return ModelFile(obj)
    if _is_state_dict(obj):
        return _from_state(obj, path, arch, input_shape)
    if isinstance(obj, dict):
        raise CheckpointError(f"'{path}' holds a dict that is neither a state_dict nor a reluscope "
                              "checkpoint; save model.state_dict() or use `reluscope train`")
    raise CheckpointError(f"'{path}' holds a {type(obj).__name__}, not a model")


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _from_state(state: dict, path: Path, arch, input_shape) -> ModelFile:
    """A model built from `arch` with the state_dict's weights."""
    if arch is None:
        raise CheckpointError(f"'{path}' holds a state_dict (weights only); name its architecture: "
                              "--arch resnet20 (or mlp:256-256, cifar_cnn) on the CLI, arch= in "
                              "nets.load (a spec or a function returning the module)")
    if callable(arch):
        model = arch()
        if not isinstance(model, nn.Module):
            raise CheckpointError(f"arch() returned a {type(model).__name__}, not an nn.Module")
        shape = tuple(input_shape) if input_shape is not None else None
    else:
        from ._builders import build

        if input_shape is None:
            raise CheckpointError(f"building '{arch}' for '{path}' needs the input shape; pass "
                                  "--input-shape or --data (input_shape= in Python)")
        shape = tuple(input_shape)
        model = build(arch, shape, _classes(state, path))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in '{path}' do not fit the architecture "
                              f"{arch if isinstance(arch, str) else 'from arch()'} "
                              f"({str(exc).splitlines()[0]}); check --arch") from None
    return ModelFile(model.eval(), shape)


def _classes(state: dict, path: Path) -> int:
    """The number of outputs: the rows of the state_dict's last weight matrix."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not weights:
        raise CheckpointError(f"'{path}' has no Linear weight to read the number of classes from")
    return int(weights[-1].shape[0])


def _read_safetensors(path: Path, map_location) -> dict:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError("reading .safetensors needs the safetensors package: "
                              "pip install safetensors") from None
    device = "cpu" if map_location is None else str(map_location)
    try:
        return load_file(str(path), device=device)
    except Exception as exc:
        raise CheckpointError(f"cannot read '{path}': not a valid safetensors file "
                              f"({type(exc).__name__}); re-save it") from None


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("constants.pkl") for n in z.namelist())
