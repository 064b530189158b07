"""What a sweep cell runs: named tasks, or any importable `module:function`.

A task is `fn(seed: int, **params) -> dict` of numbers (and short strings); it must be
deterministic for its seed so that a resumed sweep equals an uninterrupted one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import ConfigError

Task = Callable[..., dict]


def train_task(seed: int, data: str = "digits", arch: str = "mlp:256-256", epochs: int = 10,
               lr: float = 0.05, optimizer: str = "sgd", weight_decay: float = 0.0,
               batch_size: int = 64, dropout: float = 0.0) -> dict:
    """Train a built-in architecture; report final losses and accuracies."""
    import torch

    from .. import nets
    from ..data import load
    from ..train import TrainConfig, train

    torch.set_num_threads(1)  # one process per cell: no oversubscription
    ds = load(data, seed=seed)
    torch.manual_seed(seed)
    model = nets.build(arch, ds.spec.shape, ds.spec.classes, dropout=dropout)
    res = train(model, ds, TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer,
                                       weight_decay=weight_decay, batch_size=batch_size, seed=seed))
    final = res.final
    return {k: final[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}


def echo_task(seed: int, sleep: float = 0.0, **params) -> dict:
    """Return its inputs (after an optional sleep): for testing sweeps and clusters."""
    import hashlib
    import time

    time.sleep(sleep)
    digest = hashlib.sha256(repr((seed, sorted(params.items()))).encode()).hexdigest()
    return {"value": int(digest[:8], 16) / 16**8, "seed_echo": seed}


TASKS: dict[str, Task] = {"train": train_task, "echo": echo_task}


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
