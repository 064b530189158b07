"""Trained models on demand, cached on disk: train once, reuse in every analysis.

Reproductions need the same trained nets again and again (a CIFAR CNN, a wide MNIST
MLP); `trained` trains one with a fixed seed the first time and then reads it back from
the cache (`$RELUSCOPE_CACHE`, default `~/.cache/reluscope/models`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from . import nets
from .data import Dataset
from .data import load as load_data
from .train import TrainConfig, train


@dataclass
class TrainedModel:
    model: nn.Module
    init_model: nn.Module
    data: Dataset
    history: list[dict]
    path: Path
    cached: bool

    @property
    def net(self) -> nets.ReluNet:
        return nets.load(self.model, input_shape=self.data.spec.shape)


def _cache_dir() -> Path:
    base = os.environ.get("RELUSCOPE_CACHE", Path.home() / ".cache" / "reluscope")
    return Path(base) / "models"


def trained(arch: str, data: str | Path, config: TrainConfig = TrainConfig(), dropout: float = 0.0,
            max_train: int | None = None, cache: bool = True) -> TrainedModel:
    """`arch` trained on `data` with `config`, from the cache when it was trained before.

    Arguments:
        arch, dropout: as for `nets.build`.
        data: a data source for `reluscope.data.load` (split with `config.seed`).
        config: training hyper-parameters; the cache key includes all of them.
        max_train: train on the first `max_train` training samples only (quick runs).
    """
    ds = load_data(data, seed=config.seed)
    if max_train is not None and max_train < len(ds.train):
        ds = Dataset(type(ds.train)(ds.train.x[:max_train], ds.train.y[:max_train]), ds.test, ds.spec,
                     [*ds.notes, f"first {max_train} training samples"])
    spec = dict(arch=arch, data=str(Path(data).resolve()) if Path(str(data)).exists() else str(data),
                config={k: v for k, v in asdict(config).items() if k != "device"}, dropout=dropout,
                max_train=max_train, version=1)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_dir() / f"{arch.replace(':', '_')}-{key}.pt"
    if cache and path.is_file():
        file = nets.read_model_file(path, map_location=config.device)
        if file.init_model is not None:
            return TrainedModel(file.model, file.init_model, ds, file.meta.get("history", []), path, True)
    torch.manual_seed(config.seed)
    model = nets.build(arch, ds.spec.shape, ds.spec.classes, dropout=dropout)
    init = copy.deepcopy(model)
    result = train(model, ds, config)
    if cache:
        nets.save_checkpoint(path, model, arch, ds.spec.shape, ds.spec.classes, dropout, init_model=init,
                             history=result.history, config=asdict(config), data=ds.spec.to_dict())
    return TrainedModel(model.eval(), init.eval(), ds, result.history, path, False)
