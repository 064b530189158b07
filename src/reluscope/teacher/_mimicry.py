"""Does the student mimic the teacher at every level? Selectivity of the best node per (α, a)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .._display import Tabular
from .._frames import frame
from .._io import to_jsonable
from ..errors import ConfigError
from ._student import LCStudent, train_student
from ._teacher import make_teacher
from ._tree import build_tree


@dataclass(frozen=True)
class LevelMimicry(Tabular):
    """Best student node for every field α and value a of one level.

    Attributes:
        level: level of the tree (1 = just above the input).
        correlation: `(fields, m)` Pearson correlation of the best node of α with 1[z_α = a]
            (NaN where a never or always occurs in the sample).
        selectivity: `(fields, m)` `(f(a) - f(≠a)) / (f(a) + f(≠a))` of that node, in [-1, 1].
        node: `(fields, m)` index of that node.
    """

    level: int
    correlation: np.ndarray
    selectivity: np.ndarray
    node: np.ndarray

    def _valid(self) -> np.ndarray:
        return self.correlation[np.isfinite(self.correlation)]

    @property
    def mean_correlation(self) -> float:
        return _nanmean(self.correlation)

    def matched(self, threshold: float) -> float:
        """Fraction of the (α, a) whose best node correlates at least `threshold`."""
        v = self._valid()
        return float((v >= threshold).mean()) if v.size else float("nan")

    def summary(self) -> dict:
        return {"level": self.level, "mean_correlation": self.mean_correlation,
                "matched_0.9": self.matched(0.9), "matched_0.95": self.matched(0.95),
                "mean_selectivity": _nanmean(self.selectivity)}

    def to_dict(self) -> dict:
        return {**self.summary(), "correlation": self.correlation, "selectivity": self.selectivity,
                "node": self.node}

    def to_frame(self):
        """One row per field α and value a: `level`, `field`, `value`, and the best node's `node`,
        `correlation` and `selectivity`."""
        fields, m = self.correlation.shape
        return frame([dict(level=self.level, field=f, value=a, node=int(self.node[f, a]),
                           correlation=float(self.correlation[f, a]),
                           selectivity=float(self.selectivity[f, a]))
                      for f in range(fields) for a in range(m)])


def _nanmean(a: np.ndarray) -> float:
    v = a[np.isfinite(a)]
    return float(v.mean()) if v.size else float("nan")


def level_mimicry(act: torch.Tensor, z: torch.Tensor, m: int, level: int = 0) -> LevelMimicry:
    """Per-field, per-value best-node correlation and selectivity.

    Arguments:
        act: student activations `(N, n, fields)` (or `(N, n, h, w)`, flattened).
        z: teacher variables `(N, fields)` of the same level.
        m: number of values of z.
        level: recorded in the result.

    Returns:
        A `LevelMimicry`.

    Example:
        >>> z = torch.tensor([[0], [1], [0], [1]])
        >>> act = torch.nn.functional.one_hot(z[:, 0], 2).float()[:, :, None]
        >>> level_mimicry(act, z, 2).correlation.tolist()
        [[1.0, 1.0]]
    """
    act = act.flatten(2).double()
    if act.shape[0] != z.shape[0] or act.shape[2] != z.shape[1]:
        raise ConfigError(f"activations {tuple(act.shape)} and variables {tuple(z.shape)} disagree on "
                          f"samples or fields")
    ind = torch.nn.functional.one_hot(z.long(), m).double()  # (N, F, m)
    a_c = act - act.mean(0)
    i_c = ind - ind.mean(0)
    cov = torch.einsum("nkf,nfa->fak", a_c, i_c)  # (F, m, n)
    norm = a_c.pow(2).sum(0).T.sqrt()[:, None, :] * i_c.pow(2).sum(0).sqrt()[:, :, None]
    corr = torch.where(norm > 1e-12, cov / norm.clamp_min(1e-300), torch.full_like(cov, float("nan")))
    corr_for_max = torch.nan_to_num(corr, nan=-2.0)
    best, node = corr_for_max.max(-1)  # (F, m)
    best = torch.where(best < -1.5, torch.full_like(best, float("nan")), best)
    count = ind.sum(0)  # (F, m)
    sum_on = torch.einsum("nkf,nfa->fak", act, ind)  # (F, m, n)
    total = act.sum(0).T[:, None, :]  # (F, 1, n)
    mean_on = sum_on / count[:, :, None].clamp_min(1)
    mean_off = (total - sum_on) / (act.shape[0] - count)[:, :, None].clamp_min(1)
    sel = (mean_on - mean_off) / (mean_on.abs() + mean_off.abs()).clamp_min(1e-12)
    sel_best = torch.gather(sel, 2, node[:, :, None]).squeeze(-1)
    sel_best = torch.where(torch.isnan(best), best, sel_best)
    return LevelMimicry(level, best.numpy(), sel_best.numpy(), node.numpy())


def student_mimicry(student: LCStudent, x: torch.Tensor, zs: list[torch.Tensor], m) -> list[LevelMimicry]:
    """`level_mimicry` of every hidden level (1..depth-1) of `student` on inputs `x`."""
    with torch.no_grad():
        _, post = student.trace(x)
    return [level_mimicry(post[lev - 1], zs[lev], m[lev], lev) for lev in range(1, len(post))]


@dataclass(frozen=True)
class LCConfig:
    """The locally connected teacher–student experiment."""

    input_size: tuple = (4, 4)
    depth: int = 3
    kernel: int = 2
    stride: int | None = None
    m: tuple = (2, 4, 4, 4)
    kind: str = "table"
    noise: float = 0.0
    widths: tuple = (20, 20)
    batch_norm: bool = False
    n_train: int = 20_000
    n_eval: int = 2_000
    epochs: int = 10
    lr: float = 0.003
    batch_size: int = 64
    optimizer: str = "adam"
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LCResult(Tabular):
    """Mimicry per level after training, tracked per epoch.

    Attributes:
        history: one dict per epoch (0 = initialisation): loss, test accuracy, and per
            level the mean best correlation and matched fractions.
        levels: final `LevelMimicry` of every hidden level.
    """

    config: LCConfig
    teacher: dict
    history: list = field(default_factory=list)
    levels: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable({"config": self.config.to_dict(), "teacher": self.teacher, "history": self.history,
                            "levels": [lv.to_dict() for lv in self.levels]})

    def to_frame(self):
        """One row per hidden level: `level`, `mean_correlation`, `matched_0.9`, `matched_0.95`,
        `mean_selectivity` (`LevelMimicry.summary`)."""
        return frame([lv.summary() for lv in self.levels])

    def _figures(self):
        from ._plots import plot_lc

        caption = ("Best student node per field and value: look for correlations near 1 at every level (the "
                   "student mimics the teacher there)")
        yield plot_lc(self), caption


def run_lc(config: LCConfig = LCConfig()) -> LCResult:
    """Train a locally connected student on a random teacher's label, tracking mimicry.

    Arguments:
        config: an `LCConfig`.

    Returns:
        An `LCResult`.
    """
    size = config.input_size
    size = size[0] if isinstance(size, (tuple, list)) and len(size) == 1 else size
    size = size if isinstance(size, int) else tuple(size)
    tree = build_tree(size, config.depth, config.kernel, config.stride)
    teacher = make_teacher(tree, config.m, config.kind, noise=config.noise, seed=config.seed)
    gen = torch.Generator().manual_seed(config.seed + 1)
    x, zs = teacher.sample(config.n_train, gen)
    xe, zse = teacher.sample(config.n_eval, gen)
    student = LCStudent(tree, teacher.channels, config.widths, teacher.classes, config.batch_norm,
                        seed=config.seed + 2)
    history, levels = [], []

    def track(epoch: int, loss: float) -> None:
        with torch.no_grad():
            acc = float((student(xe).argmax(1) == zse[-1][:, 0]).double().mean())
        lv = student_mimicry(student, xe, zse, teacher.m)
        levels[:] = lv
        history.append({"epoch": epoch, "loss": loss, "test_acc": acc,
                        "levels": [v.summary() for v in lv]})

    student.eval()
    track(0, float("nan"))
    train_student(student, x, zs[-1][:, 0], config.epochs, config.lr, config.batch_size, config.optimizer,
                  seed=config.seed + 3, on_epoch=track)
    return LCResult(config, teacher.to_dict(), history, list(levels))
