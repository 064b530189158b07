"""The author's fully connected protocol (luckmatters `recon_multilayer.py`), reimplemented.

What the author's code does, and what this module reproduces:

- Teacher (`model_gen.init_w`, `theory_utils.init_separate_w`, `model_gen.normalize_layer`):
  every linear layer, the output layer included, gets rows drawn entrywise from
  {-0.5, -0.25, 0, 0.25, 0.5}, distinct within the layer and never all zero; biases are
  uniform on [-0.5, 0.5]; then each weight row *and its bias* are divided by the weight
  row's norm (+1e-5). Nodes are not centred: their activity is whatever the draw gives.
- Student: PyTorch's default initialisation, every hidden layer `multi` times wider.
- Data: a fixed set of Gaussian inputs (std 10), 100,000 for training, 1,024 for evaluation.
- Training: SGD (momentum 0), batch 64, MSE between student and teacher outputs.
- Metric (`getCorrs`, `utils_corrs.act2corrMat`, `vis_corrs.print_corrs`): the first 3
  batches (192 samples) of a shuffled pass over the evaluation set; Pearson correlation of
  the post-ReLU activations of every teacher node with every student node of the same
  layer; for each teacher node the best student node; per layer the mean of these bests.

- Students: `--num_trial` (default 10) trials, run one after the other on the same teacher and
  the same training and evaluation sets; each trial calls `student.reset_parameters()` (a fresh
  default initialisation from the global generator, whose state by then depends on everything
  drawn before), trains, and saves its own statistics (`cluster_utils.save_data`,
  `save-nn-trial{i}-{seed}-...`) and prints its own "Corrs Summary". Nothing in the code
  aggregates the trials. `author_student` draws the students after the first from their own
  seeds, since the author's generator state cannot be reproduced.

A maximum over hundreds of student nodes of correlations estimated from 192 samples is
biased upwards, so `heldout_best` gives the same statistic on a large fresh sample.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from ._fc import FCNet, correlation_matrix

AUTHOR_CHOICES = (-0.5, -0.25, 0.0, 0.25, 0.5)


def author_layer(rows: int, cols: int, rng: random.Random, gen: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw (not yet normalised) float32 weights and biases of one teacher layer.

    Rows have entries from `AUTHOR_CHOICES` (one `rng` draw per entry), are distinct and never
    all zero; the biases are U[-0.5, 0.5] from `gen`.
    """
    if rows > len(AUTHOR_CHOICES) ** cols - 1:
        raise ValueError(f"cannot draw {rows} distinct nonzero rows of length {cols}")
    seen, out = {(0.0,) * cols}, []
    while len(out) < rows:
        key = tuple(rng.choice(AUTHOR_CHOICES) for _ in range(cols))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return torch.tensor(out, dtype=torch.float32), torch.empty(rows).uniform_(-0.5, 0.5, generator=gen)


def normalise_rows(w: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide every weight row and its bias by the row's norm (+`eps`), as the author does; the
    weight rows get unit norm, the biases keep their ratio to the rows."""
    norm = w.pow(2).sum(1).sqrt() + eps
    return w / norm[:, None], b / norm


def _default_init(fan_in: int, fan_out: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's default `nn.Linear` initialisation, drawn from `gen`."""
    w = torch.empty(fan_out, fan_in)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
    bound = 1 / math.sqrt(fan_in)
    return w, torch.empty(fan_out).uniform_(-bound, bound, generator=gen)


@dataclass(frozen=True)
class AuthorSetup:
    """Teacher (float64), fixed training and evaluation inputs (float32) and the initial student."""

    teacher: FCNet
    x_train: torch.Tensor
    x_eval: torch.Tensor
    student: FCNet


def _net(sizes: list, params: list, dtype) -> FCNet:
    net = FCNet(sizes[0], sizes[1:-1], sizes[-1]).to(dtype)
    with torch.no_grad():
        for layer, (w, b) in zip([*net.hidden, net.out], params):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    return net


def author_setup(d: int = 20, widths=(10, 15, 20, 25), outputs: int = 100, multi: int = 10,
                 data_std: float = 10.0, n_train: int = 100_000, n_eval: int = 1024,
                 seed: int = 0) -> AuthorSetup:
    """Everything random in the author's run, drawn in the author's order from one seed.

    With the author's seed the teacher, the data and the first student are those of
    `recon_multilayer.py --seed SEED` (its global generators are replaced by `random.Random(seed)`
    for the teacher's rows and a `torch.Generator` for everything else): the inputs; PyTorch's
    default initialisation of the teacher (drawn, then overwritten); the teacher's rows and
    biases, normalised; the student built and then reset (its second initialisation is the one
    that trains).

    Example:
        >>> s = author_setup(widths=(3, 4), outputs=5, multi=2, n_train=10, n_eval=4, seed=1)
        >>> round(float(s.teacher.hidden[0].weight.norm(dim=1).max()), 4), tuple(s.x_train.shape)
        (1.0, (10, 20))
    """
    gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    x_train = torch.empty(n_train, d).normal_(0, data_std, generator=gen)
    x_eval = torch.empty(n_eval, d).normal_(0, data_std, generator=gen)
    sizes = [d, *widths, outputs]
    for a, b in zip(sizes[:-1], sizes[1:]):
        _default_init(a, b, gen)  # the teacher's own initialisation, overwritten below
    teacher = [normalise_rows(*author_layer(b, a, rng, gen)) for a, b in zip(sizes[:-1], sizes[1:])]
    wide = [d, *(w * multi for w in widths), outputs]
    for _ in range(2):  # built, then reset_parameters()
        student = [_default_init(a, b, gen) for a, b in zip(wide[:-1], wide[1:])]
    return AuthorSetup(_net(sizes, teacher, torch.float64).requires_grad_(False), x_train, x_eval,
                       _net(wide, student, torch.float32))


def author_student(d: int = 20, widths=(10, 15, 20, 25), outputs: int = 100, multi: int = 10,
                   seed: int = 0) -> FCNet:
    """A further student (float32) for the same teacher: every hidden layer `multi` times wider,
    PyTorch's default initialisation drawn from a generator seeded with `seed`.

    Example:
        >>> s = author_student(widths=(3, 4), outputs=5, multi=2, seed=7)
        >>> [h.out_features for h in s.hidden], torch.equal(s.out.weight, author_student(
        ...     widths=(3, 4), outputs=5, multi=2, seed=7).out.weight)
        ([6, 8], True)
    """
    gen = torch.Generator().manual_seed(seed)
    wide = [d, *(w * multi for w in widths), outputs]
    return _net(wide, [_default_init(a, b, gen) for a, b in zip(wide[:-1], wide[1:])], torch.float32)


def make_author_teacher(d: int = 20, widths=(10, 15, 20, 25), outputs: int = 100, seed: int = 0) -> FCNet:
    """A teacher built as the author builds it (float64): discrete distinct rows, uniform biases,
    unit rows. Not the teacher of `author_setup` for the same seed, which draws the data first.

    Example:
        >>> t = make_author_teacher(seed=1)
        >>> round(float(t.hidden[0].weight.norm(dim=1).max()), 4)
        1.0
    """
    gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    sizes = [d, *widths, outputs]
    return _net(sizes, [normalise_rows(*author_layer(b, a, rng, gen)) for a, b in zip(sizes[:-1], sizes[1:])],
                torch.float64).requires_grad_(False)


def author_correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """The author's correlation matrix `(n_a, n_b)` of centred columns:
    `a.T b / sqrt(|a|^2 + eps) / sqrt(|b|^2 + eps)`.

    A constant column (a dead node) gets 0, as with `correlation_matrix`.
    """
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    return (a.T @ b) * (a.pow(2).sum(0) + eps).rsqrt()[:, None] * (b.pow(2).sum(0) + eps).rsqrt()[None, :]


def _hiddens(teacher: FCNet, student: FCNet, x: torch.Tensor):
    with torch.no_grad():
        _, ht = teacher.hiddens(x.to(next(teacher.parameters()).dtype))
        _, hs = student.hiddens(x.to(next(student.parameters()).dtype))
    return ht, hs


def author_best(teacher: FCNet, student: FCNet, x_eval: torch.Tensor, gen: torch.Generator,
                batch_size: int = 64, batches: int = 3) -> list[np.ndarray]:
    """The author's metric: per layer, each teacher node's best correlation with a student node,
    estimated on the first `batches` batches of a shuffled pass over `x_eval` (192 samples by
    default; all of `x_eval` when it is smaller)."""
    idx = torch.randperm(x_eval.shape[0], generator=gen)[:batch_size * batches]
    ht, hs = _hiddens(teacher, student, x_eval[idx])
    return [author_correlation(t, s).max(1).values.numpy() for t, s in zip(ht, hs)]


def heldout_best(teacher: FCNet, student: FCNet, x: torch.Tensor) -> list[np.ndarray]:
    """The same statistic on a large sample `x` (Pearson, `correlation_matrix`)."""
    ht, hs = _hiddens(teacher, student, x)
    return [correlation_matrix(t, s).max(1).values.numpy() for t, s in zip(ht, hs)]


def expected_max_abs_null(n_samples: int, n_nodes: int) -> float:
    """Rough size of the best |correlation| among `n_nodes` independent nodes when the true
    correlation is 0: each sample correlation is about N(0, 1/n), and the largest of N such
    |values| is about `sqrt(2 log(2N) / n)`."""
    return math.sqrt(2 * math.log(2 * n_nodes) / n_samples)
