"""Fully connected teacher–student (the setting of the author's `recon_multilayer`).

A fixed random ReLU teacher MLP (widths [10, 15, 20, 25] on Gaussian input, d = 20, std
10, 100 linear outputs) labels inputs; a 10x wider student learns it by SGD on the MSE.
Does every teacher node find a student node of the same layer that correlates with it?
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._display import Tabular
from .._frames import frame
from .._io import to_jsonable
from .._progress import progress
from ..errors import ConfigError
from ._student import few_threads

WEIGHT_GRID = torch.arange(-4, 5, dtype=torch.float64) / 4  # {-1, -0.75, ..., 1}
PROTOCOLS = ("author", "centred")


@dataclass(frozen=True)
class FCConfig:
    """The fully connected experiment; defaults are those of the author's code (PAPERS.md §3).

    `protocol="author"` builds the teacher and measures correlations as the author's code does
    (`_author.py`: discrete unit-norm rows, uniform biases; best matches from the first
    `metric_batches` batches of the evaluation set). `"centred"` uses `make_fc_teacher` (every
    hidden node active half the time) and all `n_eval` evaluation inputs. Both also report the
    best matches on `n_heldout` fresh inputs.

    `students` students are trained one after the other on the same teacher and data, each from
    its own initialisation (`student_seed`); the author's code runs 10 (`--num_trial`). The
    default is 1 because a student costs 25-70 s per 10 epochs on 2 CPU cores.
    """

    d: int = 20
    widths: tuple = (10, 15, 20, 25)
    multi: int = 10
    outputs: int = 100
    data_std: float = 10.0
    n_train: int = 100_000
    n_eval: int = 1024
    epochs: int = 10
    lr: float = 0.01
    batch_size: int = 64
    momentum: float = 0.0
    seed: int = 0
    protocol: str = "author"
    n_heldout: int = 10_000
    metric_batches: int = 3
    students: int = 1

    def validate(self) -> FCConfig:
        ints = {"d": self.d, "multi": self.multi, "outputs": self.outputs, "n_train": self.n_train,
                "n_eval": self.n_eval, "batch_size": self.batch_size, "n_heldout": self.n_heldout,
                "metric_batches": self.metric_batches, "students": self.students}
        bad = [k for k, v in ints.items() if v < 1] + (["widths"] if not self.widths or min(self.widths) < 1
                                                       else []) + (["epochs"] if self.epochs < 0 else [])
        if bad or self.n_eval < 3 or not self.lr > 0 or not self.data_std > 0:
            raise ConfigError(f"invalid FC configuration ({', '.join(bad) or 'lr, data_std or n_eval'}): "
                              f"sizes must be positive, n_eval >= 3, lr and data_std > 0")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol '{self.protocol}': use one of {', '.join(PROTOCOLS)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class FCNet(nn.Module):
    """ReLU MLP `d -> widths... -> outputs` whose hidden activations can be read out."""

    def __init__(self, d: int, widths, outputs: int):
        super().__init__()
        sizes = [d, *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], outputs)

    def hiddens(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and the post-ReLU activations of every hidden layer (lowest first)."""
        hs = []
        for layer in self.hidden:
            x = torch.relu(layer(x))
            hs.append(x)
        return self.out(x), hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def _grid_rows(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """Distinct nonzero rows with entries from `WEIGHT_GRID`, each normalised to unit length."""
    seen, out = set(), []
    while len(out) < rows:
        r = WEIGHT_GRID[torch.randint(0, len(WEIGHT_GRID), (cols,), generator=gen)]
        key = tuple(r.tolist())
        if any(key) and key not in seen:
            seen.add(key)
            out.append(r / r.norm())
    return torch.stack(out)


def make_fc_teacher(d: int = 20, widths=(10, 15, 20, 25), outputs: int = 100, data_std: float = 10.0,
                    seed: int = 0, probe: int = 20_000) -> FCNet:
    """The random teacher (float64): grid weights, unit rows, each hidden node active half the time.

    Biases are minus the median pre-activation over `probe` Gaussian inputs, set layer by
    layer, so every node is on for about half of the inputs (the outputs are centred).

    Example:
        >>> t = make_fc_teacher(seed=1)
        >>> x = 10 * torch.randn(4000, 20, dtype=torch.float64)
        >>> round(float((t.hiddens(x)[1][0] > 0).double().mean()), 1)
        0.5
    """
    gen = torch.Generator().manual_seed(seed)
    net = FCNet(d, widths, outputs).double()
    x = data_std * torch.randn(probe, d, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for layer in [*net.hidden, net.out]:
            w = _grid_rows(layer.out_features, layer.in_features, gen)
            pre = x @ w.T
            b = -(pre.median(0).values if layer is not net.out else pre.mean(0))
            layer.weight.copy_(w)
            layer.bias.copy_(b)
            x = torch.relu(pre + b)
    return net.requires_grad_(False)


def correlation_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation `(n_a, n_b)` between the columns of `a (N, n_a)` and `b (N, n_b)`.

    Constant columns get correlation 0 (a dead node matches nothing).
    """
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    corr = (a.T @ b) / (na[:, None] * nb[None, :]).clamp_min(1e-300)
    return torch.where((na[:, None] > 1e-12) & (nb[None, :] > 1e-12), corr, torch.zeros_like(corr))


def best_match(teacher: FCNet, student: FCNet, x: torch.Tensor) -> list[np.ndarray]:
    """Per hidden layer, each teacher node's highest correlation with a student node."""
    with torch.no_grad():
        _, ht = teacher.hiddens(x.to(next(teacher.parameters()).dtype))
        _, hs = student.hiddens(x)
    return [correlation_matrix(t, s).max(1).values.numpy() for t, s in zip(ht, hs)]


def spread(rows) -> dict:
    """Mean and spread over runs: `rows` has one row per run, one column per layer.

    Returns `n` (runs) and, per column, `mean`, `std` (sample standard deviation, ddof 1; NaN for
    a single run), `min` and `max`.

    Example:
        >>> s = spread([[0.9, 0.5], [0.7, 0.7]])
        >>> s["n"], [round(v, 4) for v in s["mean"]], [round(v, 4) for v in s["std"]], s["min"]
        (2, [0.8, 0.6], [0.1414, 0.1414], [0.7, 0.5])
    """
    a = np.asarray(rows, dtype=float)
    a = a.reshape(a.shape[0], -1)
    std = a.std(0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1], np.nan)
    return {"n": int(a.shape[0]), "mean": a.mean(0).tolist(), "std": std.tolist(),
            "min": a.min(0).tolist(), "max": a.max(0).tolist()}


STUDENT_KEYS = ("mean_best", "mean_best_heldout", "small_sample_bias")


@dataclass(frozen=True)
class FCResult(Tabular):
    """Best-match correlations after training, tracked per epoch.

    Attributes:
        best: per hidden layer (lowest first), each teacher node's best correlation under the
            protocol's metric (author: 192 evaluation samples; centred: all `n_eval`).
        history: per epoch (0 = initialisation): train/eval loss, mean best correlation
            (protocol's metric and held-out) and matched fractions (>= 0.9, >= 0.95) per layer.
        seconds_per_epoch: wall time of the training epochs (tracking included), mean over students.
        best_heldout: the same as `best` on `n_heldout` fresh inputs.
        per_student: one entry per student (`config.students`), the first being the one `best`,
            `best_heldout` and `history` describe: `student` (0-based), `seed` (`student_seed`),
            per layer `mean_best`, `mean_best_heldout`, `small_sample_bias`, `matched_0.9`; and
            the final `eval_loss` and `seconds_per_epoch`.
    """

    config: FCConfig
    best: list
    history: list = field(default_factory=list)
    seconds_per_epoch: float = float("nan")
    best_heldout: list = field(default_factory=list)
    per_student: list = field(default_factory=list)

    @property
    def mean_best(self) -> list[float]:
        return [float(b.mean()) for b in self.best]

    @property
    def mean_best_heldout(self) -> list[float]:
        return [float(b.mean()) for b in self.best_heldout] or [float("nan")] * len(self.best)

    @property
    def small_sample_bias(self) -> list[float]:
        """`mean_best - mean_best_heldout` per layer: how much the small metric sample inflates it."""
        return [a - b for a, b in zip(self.mean_best, self.mean_best_heldout)]

    def matched(self, threshold: float) -> list[float]:
        return [float((b >= threshold).mean()) for b in self.best]

    @property
    def students(self) -> int:
        return max(len(self.per_student), 1)

    def students_spread(self, key: str = "mean_best") -> dict:
        """`spread` over the students of the per-layer `key` (one of `STUDENT_KEYS`): `n`, and per
        layer `mean`, `std` (NaN for one student), `min`, `max`."""
        if key not in STUDENT_KEYS:
            raise ValueError(f"unknown key '{key}': use one of {', '.join(STUDENT_KEYS)}")
        return spread([p[key] for p in self.per_student] or [getattr(self, key)])

    def students_frame(self):
        """One row per student and hidden layer: `student` (0-based), `seed`, `layer` (1-based),
        `mean_best`, `mean_best_heldout`, `small_sample_bias`, `matched_0.9`, `eval_loss`."""
        return frame([{"student": p["student"], "seed": p["seed"], "layer": i + 1, "mean_best": m,
                       "mean_best_heldout": p["mean_best_heldout"][i],
                       "small_sample_bias": p["small_sample_bias"][i],
                       "matched_0.9": p["matched_0.9"][i], "eval_loss": p["eval_loss"]}
                      for p in self.per_student for i, m in enumerate(p["mean_best"])])

    def to_dict(self) -> dict:
        return to_jsonable({"config": self.config.to_dict(), "mean_best": self.mean_best,
                            "mean_best_heldout": self.mean_best_heldout,
                            "small_sample_bias": self.small_sample_bias,
                            "matched_0.9": self.matched(0.9), "matched_0.95": self.matched(0.95),
                            "best": self.best, "best_heldout": self.best_heldout, "history": self.history,
                            "seconds_per_epoch": self.seconds_per_epoch, "students": self.per_student,
                            "students_summary": {k: self.students_spread(k) for k in STUDENT_KEYS[:2]}})

    def to_frame(self):
        """One row per hidden layer, lowest first: `layer` (1-based), `teacher_nodes`, `mean_best`
        (mean over teacher nodes of the best student correlation, the protocol's metric),
        `mean_best_heldout` (the same on `n_heldout` fresh inputs), `small_sample_bias` (their
        difference), `matched_0.9`, `matched_0.95` (all of the first student); `students`, and the
        mean and standard deviation over the students of `mean_best` (`students_mean_best`,
        `students_std_best`) and of `mean_best_heldout` (`students_mean_heldout`,
        `students_std_heldout`; the deviations are NaN for one student)."""
        m9, m95 = self.matched(0.9), self.matched(0.95)
        held, bias = self.mean_best_heldout, self.small_sample_bias
        sb, sh = self.students_spread("mean_best"), self.students_spread("mean_best_heldout")
        return frame([{"layer": i + 1, "teacher_nodes": len(b), "mean_best": mb, "mean_best_heldout": held[i],
                       "small_sample_bias": bias[i], "matched_0.9": m9[i], "matched_0.95": m95[i],
                       "students": sb["n"], "students_mean_best": sb["mean"][i],
                       "students_std_best": sb["std"][i],
                       "students_mean_heldout": sh["mean"][i], "students_std_heldout": sh["std"][i]}
                      for i, (b, mb) in enumerate(zip(self.best, self.mean_best))])

    def _figures(self):
        from ._plots import plot_fc

        caption = ("Best-match correlation of every teacher node, and its mean per epoch: look for the lower "
                   "layers near 1 and the gap to the held-out (dashed) values")
        yield plot_fc(self), caption


def fc_data(config: FCConfig, teacher: FCNet) -> tuple[torch.Tensor, ...]:
    """Training and held-out inputs (float32) with the teacher's outputs."""
    gen = torch.Generator().manual_seed(config.seed + 1)
    x = (config.data_std * torch.randn(config.n_train + config.n_eval, config.d, generator=gen)).float()
    with torch.no_grad():
        y = teacher(x.double()).float()
    n = config.n_train
    return x[:n], y[:n], x[n:], y[n:]


def fc_student(config: FCConfig) -> FCNet:
    """The student: every hidden layer `multi` times wider, PyTorch's default initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 2)
        return FCNet(config.d, [w * config.multi for w in config.widths], config.outputs)


def student_seed(seed: int, k: int) -> int:
    """Seed of student `k` (0-based) in a run with `seed`: `seed` for the first (its initialisation,
    shuffling and metric batches are the run's own streams, and in the author's protocol its
    initialisation is the one `author_setup` draws), `seed + 10_000 * k` for the others."""
    return seed + 10_000 * k


def run_fc(config: FCConfig = FCConfig(), on_epoch: Callable[[dict], None] | None = None) -> FCResult:
    """Train `config.students` students on the teacher's outputs (same teacher, same data, each its own
    initialisation), tracking best-match correlations per epoch.

    Arguments:
        config: an `FCConfig` (defaults: the author's setting and protocol, one student).
        on_epoch: called with every epoch's history entry (its `student` key says whose).

    Returns:
        An `FCResult`: the first student in full, every student in `per_student`.
    """
    from ._author import author_best, author_setup, author_student, heldout_best

    config.validate()
    c = config
    author = config.protocol == "author"
    if author:  # teacher, data and first student drawn as the author's code draws them with this seed
        setup = author_setup(c.d, c.widths, c.outputs, c.multi, c.data_std, c.n_train, c.n_eval, c.seed)
        teacher, x, xe, first = setup.teacher, setup.x_train, setup.x_eval, setup.student
        with torch.no_grad():
            y, ye = teacher(x.double()).float(), teacher(xe.double()).float()
    else:
        teacher = make_fc_teacher(config.d, config.widths, config.outputs, config.data_std, config.seed)
        x, y, xe, ye = fc_data(config, teacher)
        first = fc_student(config)
    xh = (config.data_std * torch.randn(config.n_heldout, config.d,
                                        generator=torch.Generator().manual_seed(config.seed + 4))).float()

    def train(k: int, student: FCNet, sseed: int):
        opt = torch.optim.SGD(student.parameters(), lr=config.lr, momentum=config.momentum)
        gen = torch.Generator().manual_seed(sseed + 3)
        metric_gen = torch.Generator().manual_seed(sseed + 5)
        history: list[dict] = []

        def track(epoch: int, train_loss: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
            best = (author_best(teacher, student, xe, metric_gen, config.batch_size, config.metric_batches)
                    if author else best_match(teacher, student, xe))
            held = heldout_best(teacher, student, xh)
            with torch.no_grad():
                eval_loss = float(F.mse_loss(student(xe), ye))
            if not np.isfinite(eval_loss):
                raise ConfigError(f"training diverged at epoch {epoch} (loss {eval_loss}); "
                                  "lower the learning rate")
            entry = {"epoch": epoch, "student": k, "train_loss": train_loss, "eval_loss": eval_loss,
                     "mean_best": [float(b.mean()) for b in best],
                     "mean_best_heldout": [float(b.mean()) for b in held],
                     "matched_0.9": [float((b >= 0.9).mean()) for b in best],
                     "matched_0.95": [float((b >= 0.95).mean()) for b in best]}
            history.append(entry)
            if on_epoch is not None:
                on_epoch(entry)
            return best, held

        best, held = track(0, float("nan"))
        start = time.perf_counter()
        desc = "fc student" if config.students == 1 else f"fc student {k + 1}/{config.students}"
        with few_threads():
            for epoch in progress(range(1, config.epochs + 1), desc=desc, total=config.epochs):
                perm = torch.randperm(config.n_train, generator=gen)
                total = torch.zeros(())
                for s in range(0, config.n_train, config.batch_size):
                    idx = perm[s:s + config.batch_size]
                    opt.zero_grad(set_to_none=True)
                    loss = F.mse_loss(student(x[idx]), y[idx])
                    loss.backward()
                    opt.step()
                    total += loss.detach() * idx.shape[0]
                best, held = track(epoch, float(total) / config.n_train)
        return best, held, history, (time.perf_counter() - start) / max(config.epochs, 1)

    per_student, kept = [], None
    for k in range(config.students):
        sseed = student_seed(config.seed, k)
        if k == 0:
            student = first
        elif author:
            student = author_student(c.d, c.widths, c.outputs, c.multi, sseed)
        else:
            student = fc_student(replace(config, seed=sseed))
        best, held, history, seconds = train(k, student, sseed)
        last = history[-1]
        bias = [a - b for a, b in zip(last["mean_best"], last["mean_best_heldout"])]
        per_student.append({"student": k, "seed": sseed, "mean_best": last["mean_best"],
                            "mean_best_heldout": last["mean_best_heldout"], "small_sample_bias": bias,
                            "matched_0.9": last["matched_0.9"], "eval_loss": last["eval_loss"],
                            "seconds_per_epoch": seconds})
        if k == 0:
            kept = (best, held, history)
    seconds = float(np.mean([p["seconds_per_epoch"] for p in per_student]))
    return FCResult(config, kept[0], kept[2], seconds, kept[1], per_student)
