"""One training loop for MLPs and CNNs: seeded, with progress, history and checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import _progress
from ._display import Tabular
from ._frames import frame
from ._io import write_json
from .data import Dataset
from .errors import ConfigError

# (x, y) -> (x, y), or (x, y, w): per-sample loss weights, the loss being sum(w * cross-entropy)
Augment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of `train`. Learning rate 0.05 (SGD) suits the built-in nets."""

    epochs: int = 30
    lr: float = 0.05
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) or "adam"
    weight_decay: float = 0.0
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer '{self.optimizer}' is unknown; use sgd or adam")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs must be >= 0, batch size >= 1 and lr > 0")


@dataclass
class TrainResult(Tabular):
    """The trained model and one history row per epoch (loss and accuracy)."""

    model: nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    def to_dict(self) -> dict:
        return dict(config=asdict(self.config), history=self.history)

    def to_frame(self):
        """One row per epoch: `epoch`, `train_loss`, `train_acc`, `test_loss`, `test_acc` (losses: mean
        cross-entropy, accuracies in [0, 1]) and `time_s` (the epoch's wall time)."""
        return frame([{("time_s" if k == "seconds" else k): v for k, v in h.items()} for h in self.history])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (in eval mode) on `(x, y)`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    for s in range(0, len(x), batch_size):
        xb, yb = x[s:s + batch_size].to(device), y[s:s + batch_size].to(device)
        out = model(xb)
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    n = max(1, len(x))
    return loss / n, correct / n


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def train(model: nn.Module, data: Dataset, config: TrainConfig = TrainConfig(),
          augment: Augment | None = None, on_epoch: Callable[[TrainResult], None] | None = None,
          history_path: str | Path | None = None, evaluate_at: Collection[int] | None = None) -> TrainResult:
    """Train `model` on `data.train` with cross-entropy; evaluate on `data.test` each epoch.

    Arguments:
        model: any classifier `nn.Module` (moved to `config.device`).
        data: a `reluscope.data.Dataset`.
        config: hyper-parameters and seed (same seed, same weights and history).
        augment: optional `augment(x, y) -> (x, y)` applied to every training batch
            (e.g. `reluscope.shadow.ShadowAugment`); one returning `(x, y, w)` gives per-sample
            loss weights, and the step minimises `sum(w * cross_entropy)`.
        on_epoch: optional hook called with the `TrainResult` so far after each epoch
            (e.g. to save a checkpoint, so an interrupted run loses nothing).
        history_path: write the history as JSON after every epoch (atomic).
        evaluate_at: the epochs after which `data.test` is evaluated (default: every one; the
            last is always evaluated). Evaluation does not touch the random state, so this
            changes only the cost (a test pass per epoch can outweigh a short epoch).

    Returns:
        A `TrainResult` with the model and a history row per epoch: `epoch`,
        `train_loss`, `train_acc`, `seconds`, and `test_loss`, `test_acc` where evaluated.
    """
    torch.manual_seed(config.seed)
    model.to(config.device)
    opt = _optimizer(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    x, y = data.train.x, data.train.y
    result = TrainResult(model, config)
    bar = _progress.progress(total=config.epochs, desc="train", leave=True)
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        # running sums stay on the device: no host sync per step (it stalls a GPU)
        seen = 0
        loss_sum = torch.zeros((), dtype=torch.float64, device=config.device)
        correct = torch.zeros((), dtype=torch.int64, device=config.device)
        for idx in torch.randperm(len(x), generator=gen).split(config.batch_size):
            xb, yb = x[idx].to(config.device), y[idx].to(config.device)
            weights = None
            if augment is not None:
                xb, yb, *weights = augment(xb, yb)
            out = model(xb)
            if weights:
                loss = (weights[0] * F.cross_entropy(out, yb, reduction="none")).sum()
            else:
                loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(yb)
            loss_sum += loss.detach().double() * len(yb)
            correct += (out.argmax(1) == yb).sum()
        loss_sum, correct = float(loss_sum), int(correct)
        if not math.isfinite(loss_sum):
            raise ConfigError(f"training diverged (loss is {loss_sum}) at epoch {epoch}; lower the "
                              f"learning rate (now {config.lr})")
        row = dict(epoch=epoch, train_loss=loss_sum / seen, train_acc=correct / seen)
        if evaluate_at is None or epoch in evaluate_at or epoch == config.epochs:
            row["test_loss"], row["test_acc"] = evaluate(model, data.test.x, data.test.y)
        row["seconds"] = time.perf_counter() - start
        result.history.append(row)
        if history_path is not None:
            write_json(history_path, result.history)
        if on_epoch is not None:
            on_epoch(result)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", **({"acc": f"{row['test_acc']:.3f}"}
                                                             if "test_acc" in row else {}))
        bar.update()
    bar.close()
    model.eval()
    return result
