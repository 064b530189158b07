"""Locally connected student over the teacher's fields, and its training loop on the label."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .._progress import progress
from ..errors import ConfigError
from ._tree import FieldTree


@contextlib.contextmanager
def few_threads(n: int = 1) -> Iterator[None]:
    """Run tiny-model loops on `n` threads: thread hand-offs cost more than these small ops."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(n, old))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class FieldLinear(nn.Module):
    """Locally connected layer over the fields of one tree level (unshared weights per field).

    The same map as `reluscope.nets.LocallyConnected2d` with the tree's windows, but it
    gathers each field's children by index (no `unfold`, which is slow in float64).

    Shapes: weight `(fields, out, in_channels * fan_in)` with column `c * fan_in + slot`
    (the order of `unfold`), bias `(fields, out)`; input `(B, C, h, w)` of the level
    below, output `(B, out, oh, ow)`.
    """

    def __init__(self, in_channels: int, out_channels: int, children: list[list[int]], out_size):
        super().__init__()
        self.register_buffer("index", torch.tensor(children, dtype=torch.long), persistent=False)
        self.in_channels, self.out_channels, self.out_size = in_channels, out_channels, tuple(out_size)
        n_fields, fan = self.index.shape
        bound = 1 / (in_channels * fan) ** 0.5
        w = torch.empty(n_fields, out_channels, in_channels * fan).uniform_(-bound, bound)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.empty(n_fields, out_channels).uniform_(-bound, bound))

    @property
    def fan_in(self) -> int:
        return self.index.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p = x.flatten(2)[:, :, self.index]  # (B, C, F, K)
        p = p.permute(2, 0, 1, 3).reshape(self.index.shape[0], b, -1)  # (F, B, C*K)
        out = torch.baddbmm(self.bias[:, None, :], p, self.weight.transpose(1, 2))  # (F, B, out)
        return out.permute(1, 2, 0).reshape(b, self.out_channels, *self.out_size)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, fields={self.index.shape[0]}, fan_in={self.fan_in}"


class LCStudent(nn.Module):
    """One locally connected layer per level of `tree`: `widths[l-1]` nodes per field at level l.

    The top level (field ω) has `classes` nodes and no activation (the logits); lower levels
    use ReLU (or identity with `activation="linear"`), with optional batch norm before it.

    Arguments:
        tree: the receptive fields.
        in_channels: channels of the input at each leaf.
        widths: nodes per field of levels 1..depth-1 (`n_α`).
        classes: outputs of the top field.
        batch_norm: add `BatchNorm2d` before every hidden activation.
        activation: "relu" or "linear".
        top_activation: apply the activation to the top too (the all-vertex setting of Thm 6).
        seed: seed of the initial weights (None: torch's global generator).
    """

    def __init__(self, tree: FieldTree, in_channels: int, widths, classes: int, batch_norm: bool = False,
                 activation: str = "relu", top_activation: bool = False, seed: int | None = None):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) != tree.depth - 1 or min(widths + [classes]) < 1:
            raise ConfigError(f"widths needs {tree.depth - 1} positive ints (levels 1..{tree.depth - 1}), "
                              f"got {widths}")
        if activation not in ("relu", "linear"):
            raise ConfigError(f"activation must be relu or linear, got '{activation}'")
        self.tree, self.activation, self.top_activation = tree, activation, top_activation
        outs = widths + [classes]
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            ins = [in_channels] + widths
            self.levels = nn.ModuleList(
                FieldLinear(ins[i], outs[i], tree._children[i + 1], tree.grids[i + 1])
                for i in range(tree.depth))
            self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths) if batch_norm else None

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z) if self.activation == "relu" else z

    def trace(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Pre-activations (after batch norm) and activations of levels 1..depth.

        Returns:
            `(pre, post)`, lists of `(B, n_l, h_l, w_l)` tensors; the last entry is the top.
        """
        pre, post, h = [], [], x
        for i, layer in enumerate(self.levels):
            z = layer(h)
            top = i == len(self.levels) - 1
            if not top and self.norms is not None:
                z = self.norms[i](z)
            h = self._act(z) if (not top or self.top_activation) else z
            pre.append(z)
            post.append(h)
        return pre, post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trace(x)[1][-1].flatten(1)

    def child_weight(self, level: int, field: int, slot: int) -> torch.Tensor:
        """`W_βα`: the `(n_β, n_α)` weights from the `slot`-th child β of `field` at `level`."""
        layer = self.levels[level - 1]
        return layer.weight[field][:, slot::layer.fan_in].T

    def field_bias(self, level: int, field: int) -> torch.Tensor:
        return self.levels[level - 1].bias[field]


def train_student(student: nn.Module, x: torch.Tensor, target: torch.Tensor, epochs: int, lr: float = 0.05,
                  batch_size: int = 64, optimizer: str = "sgd", momentum: float = 0.9, loss: str = "ce",
                  seed: int = 0, on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `student` on `(x, target)` with minibatches; returns the mean loss of every epoch.

    Arguments:
        student: the model (called on a batch of `x`).
        x: inputs.
        target: labels (`loss="ce"`) or regression targets (`loss="mse"`).
        epochs: passes over the data.
        lr: learning rate.
        batch_size: minibatch size.
        optimizer: "sgd" (with `momentum`) or "adam".
        loss: "ce" (cross-entropy on labels) or "mse".
        seed: seed of the batch order.
        on_epoch: called as `on_epoch(epoch, mean_loss)` after every epoch (epoch 1..epochs).

    Returns:
        The mean training loss of every epoch.
    """
    if optimizer == "sgd":
        opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=momentum)
    elif optimizer == "adam":
        opt = torch.optim.Adam(student.parameters(), lr=lr)
    else:
        raise ConfigError(f"unknown optimizer '{optimizer}'; use sgd or adam")
    loss_fn = {"ce": F.cross_entropy, "mse": F.mse_loss}.get(loss)
    if loss_fn is None:
        raise ConfigError(f"unknown loss '{loss}'; use ce or mse")
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    with few_threads():
        _epochs(student, x, target, epochs, batch_size, opt, loss_fn, gen, on_epoch, losses)
    student.eval()
    return losses


def _epochs(student, x, target, epochs, batch_size, opt, loss_fn, gen, on_epoch, losses) -> None:
    for epoch in progress(range(1, epochs + 1), desc="student", total=epochs):
        student.train()
        perm = torch.randperm(x.shape[0], generator=gen)
        total, count = 0.0, 0
        for start in range(0, x.shape[0], batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            value = loss_fn(student(x[idx]), target[idx])
            value.backward()
            opt.step()
            total += value.item() * idx.shape[0]
            count += idx.shape[0]
        losses.append(total / count)
        if on_epoch is not None:
            student.eval()
            on_epoch(epoch, losses[-1])
