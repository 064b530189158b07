"""Prepare model and data for the report: train the default model or load the user's."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .. import nets
from ..data import load as load_data
from ..train import TrainConfig, TrainResult, train
from ._build import build_report
from ._registry import ReportContext

DEFAULT_ARCH = "mlp:256-256"


def prepare_context(model: str | Path | nn.Module | None = None, data: str = "digits",
                    arch: str = DEFAULT_ARCH, epochs: int = 30, seed: int = 0, device: str = "cpu",
                    quick: bool = True, out_dir: str | Path = "reluscope-report", command: str = "", *,
                    init_model: nn.Module | None = None, file_arch=None,
                    trust_pickle: bool | None = None) -> ReportContext:
    """Load the data, then take `model` (an `nn.Module` or a model file) or train `arch` on
    it, and return the context.

    `init_model` is the module at initialisation, for the sections that compare; a model
    file's `file_arch` and `trust_pickle` are as for `nets.read_model_file`.
    """
    dataset = load_data(data, seed=seed)
    training, shape = None, dataset.spec.shape
    if model is None:
        torch.manual_seed(seed)
        module = nets.build(arch, dataset.spec.shape, dataset.spec.classes)
        init_model = copy.deepcopy(module)
        training = train(module, dataset, TrainConfig(epochs=epochs, seed=seed, device=device))
    elif isinstance(model, nn.Module):
        module = model
    else:
        file = nets.read_model_file(model, map_location=device, arch=file_arch, input_shape=shape,
                                    trust_pickle=trust_pickle)
        module, init_model, shape = file.model, file.init_model, file.input_shape or shape
        if file.meta.get("history"):
            training = TrainResult(module, TrainConfig(**file.meta.get("config", {})),
                                   file.meta["history"])
    net = nets.load(module, input_shape=shape)
    return ReportContext(model=module, net=net, data=dataset, seed=seed, device=device,
                         out_dir=Path(out_dir), quick=quick, training=training,
                         init_model=init_model, command=command)


def run_report(**kwargs):
    """`prepare_context(**kwargs)` then `build_report`; returns a `Report` (path, outcomes)."""
    strict = kwargs.pop("strict", False)
    only = kwargs.pop("only", None)
    return build_report(prepare_context(**kwargs), only=only, strict=strict)
