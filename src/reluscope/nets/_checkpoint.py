"""reluscope checkpoints: the model's weights plus what is needed to rebuild it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write_bytes
from ..errors import CheckpointError

FORMAT = "reluscope-checkpoint"
VERSION = 1


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_checkpoint(path, model: nn.Module, arch: str, input_shape, classes: int,
                    dropout: float = 0.0, init_model: nn.Module | None = None, **meta: Any) -> Path:
    """Save `model` (built by `nets.build(arch, ...)`) atomically; `nets.load` reads it.

    `init_model`, the same network at initialisation, is stored too so analyses can
    compare trained with initial weights; `meta` holds e.g. the history and data spec.
    """
    payload = dict(format=FORMAT, version=VERSION, arch=arch, input_shape=list(input_shape),
                   classes=classes, dropout=dropout, state_dict=_cpu_state(model),
                   init_state_dict=_cpu_state(init_model) if init_model is not None else None,
                   meta=meta)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def model_from_checkpoint(ckpt: dict, path: Path | str = "",
                          key: str = "state_dict") -> tuple[nn.Module, tuple[int, ...]]:
    from ._builders import build

    try:
        shape = tuple(ckpt["input_shape"])
        model = build(ckpt["arch"], shape, ckpt["classes"], ckpt.get("dropout", 0.0))
        model.load_state_dict(ckpt[key])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint '{path}' is incomplete or does not match its "
                              f"architecture ({str(exc).splitlines()[0]}); retrain or re-save") from None
    model.eval()
    return model, shape
