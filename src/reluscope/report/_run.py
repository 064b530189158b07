"""Prepare model and data for the report: train the default model or load the user's."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from .. import nets
from ..data import load as load_data
from ..train import TrainConfig, TrainResult, train
from ._build import build_report
from ._registry import ReportContext

DEFAULT_ARCH = "mlp:256-256"


def prepare_context(model: str | None = None, data: str = "digits", arch: str = DEFAULT_ARCH,
                    epochs: int = 30, seed: int = 0, device: str = "cpu", quick: bool = True,
                    out_dir: str | Path = "reluscope-report", command: str = "") -> ReportContext:
    """Load the data, then load `model` or train `arch` on it, and return the context."""
    dataset = load_data(data, seed=seed)
    training, init_model = None, None
    if model is None:
        torch.manual_seed(seed)
        module = nets.build(arch, dataset.spec.shape, dataset.spec.classes)
        init_model = copy.deepcopy(module)
        training = train(module, dataset, TrainConfig(epochs=epochs, seed=seed, device=device))
    else:
        file = nets.read_model_file(model, map_location=device)
        module, init_model = file.model, file.init_model
        if file.meta.get("history"):
            training = TrainResult(module, TrainConfig(**file.meta.get("config", {})),
                                   file.meta["history"])
    shape = dataset.spec.shape if model is None else (file.input_shape or dataset.spec.shape)
    net = nets.load(module, input_shape=shape)
    return ReportContext(model=module, net=net, data=dataset, seed=seed, device=device,
                         out_dir=Path(out_dir), quick=quick, training=training,
                         init_model=init_model, command=command)


def run_report(**kwargs):
    """`prepare_context(**kwargs)` then `build_report`; returns (path, outcomes)."""
    strict = kwargs.pop("strict", False)
    only = kwargs.pop("only", None)
    return build_report(prepare_context(**kwargs), only=only, strict=strict)
