"""What a sweep cell runs: named tasks, or any importable `module:function`.

A task is `fn(seed: int, **params) -> dict` of numbers (and short strings); it must be
deterministic for its seed so that a resumed sweep equals an uninterrupted one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import ConfigError

Task = Callable[..., dict]


def _trained(seed: int, data: str, arch: str, epochs: int, lr: float, optimizer: str = "sgd",
             weight_decay: float = 0.0, batch_size: int = 64, dropout: float = 0.0):
    """(model, model at initialisation, data set, training result), single-threaded."""
    import copy

    import torch

    from .. import nets
    from ..data import load
    from ..train import TrainConfig, train

    torch.set_num_threads(1)  # one process per cell: no oversubscription
    ds = load(data, seed=seed)
    torch.manual_seed(seed)
    model = nets.build(arch, ds.spec.shape, ds.spec.classes, dropout=dropout)
    init = copy.deepcopy(model)
    res = train(model, ds, TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                                       weight_decay=weight_decay, batch_size=batch_size, seed=seed))
    return model.eval(), init.eval(), ds, res


def train_task(seed: int, data: str = "digits", arch: str = "mlp:256-256", epochs: int = 10,
               lr: float = 0.05, optimizer: str = "sgd", weight_decay: float = 0.0,
               batch_size: int = 64, dropout: float = 0.0) -> dict:
    """Train a built-in architecture; report final losses and accuracies."""
    *_, res = _trained(seed, data, arch, epochs, lr, optimizer, weight_decay, batch_size, dropout)
    return {k: res.final[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}


def spectrum_task(seed: int, data: str = "digits", arch: str = "mlp:256-256", epochs: int = 10,
                  lr: float = 0.05, optimizer: str = "sgd", weight_decay: float = 0.0) -> dict:
    """Train, then test every weight matrix for random-likeness (trained and at initialisation)."""
    import math

    from ..spectrum import analyze

    model, init, ds, res = _trained(seed, data, arch, epochs, lr, optimizer, weight_decay)
    spec = analyze(model, init_model=init, input_shape=ds.spec.shape, seed=seed)
    alphas = sorted(ls.tail.alpha for ls in spec.layers if not math.isnan(ls.tail.alpha))
    return {"test_acc": res.final["test_acc"], "layers": len(spec.layers),
            "random_like": sum(ls.verdict.label == "random-like" for ls in spec.layers),
            "random_like_init": sum(ls.verdict.label == "random-like" for ls in spec.init),
            "outliers": sum(ls.mp.n_outliers for ls in spec.layers),
            "outliers_init": sum(ls.mp.n_outliers for ls in spec.init),
            "median_alpha": alphas[len(alphas) // 2] if alphas else float("nan")}


def preimage_task(seed: int, data: str = "digits", hidden: int = 256, epochs: int = 10, lr: float = 0.05,
                  weight_decay: float = 0.0, samples: int = 100) -> dict:
    """Train a one-hidden-layer MLP; classify the pre-images of its hidden layer on test samples."""
    from .. import nets
    from ..preimage._net import classify_layer

    model, _, ds, res = _trained(seed, data, f"mlp:{hidden}", epochs, lr, weight_decay=weight_decay)
    net = nets.load(model, input_shape=ds.spec.shape)
    batch = classify_layer(net, 0, ds.test.x[:samples], workers=1).batch
    return {"test_acc": res.final["test_acc"], **batch.counts(),
            "mean_positive": float(batch.n_positive.mean())}


def teacher_task(seed: int, widths: str = "10,15,20,25", multi: int = 10, n_train: int = 100_000,
                 epochs: int = 10, lr: float = 0.01, momentum: float = 0.0) -> dict:
    """The fully connected teacher–student run (defaults: the author's setting, as `reluscope
    teacher fc`): mean best-match correlation per hidden layer."""
    import re

    import torch

    from ..teacher import FCConfig, run_fc

    torch.set_num_threads(1)
    layers = tuple(int(w) for w in re.split(r"[-,]", str(widths)))
    res = run_fc(FCConfig(widths=layers, multi=multi, n_train=n_train, epochs=epochs, lr=lr,
                          momentum=momentum, seed=seed))
    return {f"mean_best_L{i + 1}": float(b.mean()) for i, b in enumerate(res.best)}


def echo_task(seed: int, sleep: float = 0.0, **params) -> dict:
    """Return its inputs (after an optional sleep): for testing sweeps and clusters."""
    import hashlib
    import time

    time.sleep(sleep)
    digest = hashlib.sha256(repr((seed, sorted(params.items()))).encode()).hexdigest()
    return {"value": int(digest[:8], 16) / 16**8, "seed_echo": seed}


TASKS: dict[str, Task] = {"train": train_task, "spectrum": spectrum_task, "preimage": preimage_task,
                          "teacher": teacher_task, "echo": echo_task}


def resolve_task(name: str) -> Task:
    """A registered task by name, or `package.module:function`."""
    if name in TASKS:
        return TASKS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import task '{name}' ({exc})") from None
    raise ConfigError(f"unknown task '{name}'; use one of {sorted(TASKS)} or module:function")
