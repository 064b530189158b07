"""Trained models on demand, cached on disk: train once, reuse in every analysis.

Reproductions need the same trained nets again and again (a CIFAR CNN, a wide MNIST
MLP); `trained` trains one with a fixed seed the first time and then reads it back from
the cache (`$RELUSCOPE_CACHE`, default `~/.cache/reluscope/models`).

`get(arch, data)` is the zoo: any `nets.build` architecture (MLPs, the CIFAR CNN of
Behrmann et al., ResNet-20 of He et al. 2016 and ResNet-18 in the CIFAR layout) trained
with its recipe (`RECIPES`: a short run for the conv nets), so a report needs no user
model: `reluscope report --arch resnet20 --data <cifar tree>`.
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
from .errors import ConfigError
from .train import TrainConfig, train


@dataclass
class TrainedModel:
    model: nn.Module
    init_model: nn.Module
    data: Dataset
    history: list[dict]
    path: Path
    cached: bool
    config: TrainConfig | None = None  # the training run's

    @property
    def net(self) -> nets.ReluNet:
        return nets.load(self.model, input_shape=self.data.spec.shape)


def _cache_dir() -> Path:
    base = os.environ.get("RELUSCOPE_CACHE", Path.home() / ".cache" / "reluscope")
    return Path(base) / "models"


def trained(arch: str, data: str | Path, config: TrainConfig = TrainConfig(), dropout: float = 0.0,
            max_train: int | None = None, cache: bool = True, init: str = "default") -> TrainedModel:
    """`arch` trained on `data` with `config`, from the cache when it was trained before.

    Arguments:
        arch: as for `nets.build`.
        dropout: as for `nets.build`.
        data: a data source for `reluscope.data.load` (split with `config.seed`).
        config: training hyper-parameters; the cache key includes all of them.
        max_train: train on the first `max_train` training samples only (quick runs).
        init: "default" (PyTorch's uniform init) or "gaussian" (`nets.gaussian_init`: N(0, 1/(3 fan_in)),
            AlexNet's Gaussian law at PyTorch's default scale).
    """
    if init not in ("default", "gaussian"):
        raise ConfigError(f"unknown init '{init}'; use 'default' or 'gaussian'")
    ds = load_data(data, seed=config.seed)
    if max_train is not None and max_train < len(ds.train):
        ds = Dataset(type(ds.train)(ds.train.x[:max_train], ds.train.y[:max_train]), ds.test, ds.spec,
                     [*ds.notes, f"first {max_train} training samples"])
    spec = dict(arch=arch, data=str(Path(data).resolve()) if Path(str(data)).exists() else str(data),
                config={k: v for k, v in asdict(config).items() if k != "device"}, dropout=dropout,
                max_train=max_train, version=1, **({} if init == "default" else {"init": init}))
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_dir() / f"{arch.replace(':', '_')}-{key}.pt"
    if cache and path.is_file():
        file = nets.read_model_file(path, map_location=config.device)
        if file.init_model is not None:
            return TrainedModel(file.model, file.init_model, ds, file.meta.get("history", []), path, True,
                                config)
    torch.manual_seed(config.seed)
    model = nets.build(arch, ds.spec.shape, ds.spec.classes, dropout=dropout)
    if init == "gaussian":
        nets.gaussian_init(model, seed=config.seed)
    init_model = copy.deepcopy(model)
    result = train(model, ds, config)
    if cache:
        nets.save_checkpoint(path, model, arch, ds.spec.shape, ds.spec.classes, dropout,
                             init_model=init_model,
                             history=result.history, config=asdict(config), data=ds.spec.to_dict())
    return TrainedModel(model.eval(), init_model.eval(), ds, result.history, path, False, config)


@dataclass(frozen=True)
class Recipe:
    """How the zoo trains an architecture family unless told otherwise.

    `max_train`: train on the first that many training samples (None: all of them).
    """

    epochs: int
    lr: float = 0.05
    optimizer: str = "sgd"
    max_train: int | None = None
    description: str = ""


# The conv nets get a short run (Adam, 2 epochs on 4000 images: minutes on a CPU), enough
# for their weights to leave initialisation; pass epochs / max_train for longer ones.
_SHORT = dict(epochs=2, lr=1e-3, optimizer="adam", max_train=4000)
RECIPES: dict[str, Recipe] = {
    "mlp": Recipe(30, description="ReLU MLP, mlp:W1-W2-... hidden widths (SGD, 30 epochs)"),
    "cifar_cnn": Recipe(**_SHORT, description="the CIFAR-10 CNN of Behrmann et al. (2018)"),
    "alexnet_cifar": Recipe(**_SHORT, description="a small AlexNet for CIFAR-10 (two conv5x5 64 + max-pool, "
                                                  "dense 384-192)"),
    "resnet20": Recipe(**_SHORT, description="ResNet-20 (He et al. 2016, CIFAR: 3 stages of 3 basic "
                                             "blocks, 16/32/64 channels, 0.27 M parameters)"),
    "resnet18": Recipe(**_SHORT, description="ResNet-18 in the CIFAR layout (3x3 stem, no max-pool, "
                                             "4 stages of 2 basic blocks, 64-512 channels, 11 M parameters)"),
}


def recipe(arch: str) -> Recipe:
    """The training recipe of `arch` (by family: `mlp:256-256` -> `mlp`)."""
    family = arch.partition(":")[0]
    family = {"cnn": "cifar_cnn"}.get(family, family)
    if family not in RECIPES:
        raise ConfigError(f"unknown architecture '{arch}'; use mlp:W1-W2-..., cifar_cnn, resnet20 "
                          "or resnet18")
    return RECIPES[family]


def get(arch: str, data: str | Path, epochs: int | None = None, max_train: int | None = -1, seed: int = 0,
        device: str = "cpu", cache: bool = True) -> TrainedModel:
    """`arch` trained on `data` with its recipe (see `RECIPES`), from the cache when it was
    trained before.

    Arguments:
        epochs: instead of the recipe's.
        max_train: instead of the recipe's (-1); 0 or None: all training samples.
        seed: of the training run (also splits the data).
        device: of the training run.
        cache: False trains afresh and writes nothing.
    """
    r = recipe(arch)
    config = TrainConfig(epochs=r.epochs if epochs is None else epochs, lr=r.lr, optimizer=r.optimizer,
                         seed=seed, device=device)
    n = r.max_train if max_train == -1 else (max_train or None)
    return trained(arch, data, config, max_train=n, cache=cache)
