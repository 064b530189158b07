"""Behrmann et al. (2018), slide 12: pre-images of a 784→3500 ReLU layer on MNIST.

Protocols (the paper's training is unknown; PAPERS.md §2):

- `standard`: Adam (lr 1e-3, batch 128) on the MNIST split, cross-entropy only. Known to
  leave 1,260–2,070 of the 3,500 units active per sample: every pre-image a singleton.
- `sparse`: the same plus an L1 penalty `beta * mean_batch(sum_i h_i)` on the hidden
  activations, which drives the layer into the slide's regime of 300–1,000 positives.

Random layers of the same shape: PyTorch's default initialisation (about half the units
active, so singletons by rank), and the same weights with one bias shift that gives the
sparse layer's mean number of positives, where Wendel's theorem predicts compact
pre-images almost always.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import nets
from .._display import Tabular
from .._frames import frame
from ..report._registry import Claim
from ._batch import BatchResult, classify_batch
from ._tol import Tolerances
from ._wendel import wendel_probability

HIDDEN = 3500
SPARSE_BETA = 3e-4  # measured: mean 634 positives (min 207, max 1140) after 5 epochs, seed 0


class _L1Grad(torch.autograd.Function):
    """Identity forward; backward adds the gradient of `beta * mean_batch(sum_i h_i)` (h >= 0)."""

    @staticmethod
    def forward(ctx, h, beta):
        ctx.save_for_backward(h)
        ctx.beta = beta
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        return grad + ctx.beta * (h > 0).to(grad.dtype) / h.shape[0], None


class ActivationL1(nn.Module):
    """Adds an L1 activation penalty to the loss's gradient during training (identity in eval).

    Lets `reluscope.train.train` (cross-entropy only) train a sparse layer unchanged.
    """

    def __init__(self, beta: float):
        super().__init__()
        self.beta = float(beta)

    def forward(self, h):
        return _L1Grad.apply(h, self.beta) if self.training and self.beta > 0 else h


@dataclass(frozen=True)
class LayerRun:
    """One 784→3500 layer classified on the test samples."""

    name: str
    description: str
    batch: BatchResult
    test_acc: float = float("nan")
    wendel_compact: float | None = None  # mean Wendel probability over the non-singleton samples
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        pos = self.batch.n_positive
        hist, edges = np.histogram(pos, bins=30)
        return dict(name=self.name, description=self.description, test_acc=self.test_acc,
                    wendel_compact=self.wendel_compact, history=self.history,
                    histogram=dict(counts=hist.tolist(), edges=edges.tolist()),
                    by_kind={k: pos[np.array(self.batch.kinds) == k].tolist() for k in self.batch.counts()},
                    **self.batch.to_dict(samples=False))


@dataclass(frozen=True)
class PreimageReproduction(Tabular):
    protocols: list[LayerRun]
    random: list[LayerRun]
    n_input: int
    notes: list[str] = field(default_factory=list)
    hidden: int = HIDDEN

    def to_dict(self) -> dict:
        return dict(n_input=self.n_input, hidden=self.hidden, protocols=[p.to_dict() for p in self.protocols],
                    random=[r.to_dict() for r in self.random], notes=self.notes)

    def to_frame(self):
        """One row per layer run: its kinds and positive outputs (the slide's table)."""
        rows = []
        for group, runs in (("protocol", self.protocols), ("random", self.random)):
            for run in runs:
                pos = run.batch.n_positive
                rows.append(dict(layer=run.name, group=group, description=run.description,
                                 test_acc=run.test_acc, **run.batch.counts(), mean_positive=float(pos.mean()),
                                 min_positive=int(pos.min()), max_positive=int(pos.max()),
                                 wendel_compact=run.wendel_compact, time_s=run.batch.seconds))
        return frame(rows)

    def _in_regime(self, run: LayerRun) -> bool:
        return 300 <= float(run.batch.n_positive.mean()) <= 1000

    def reading(self) -> str:
        parts = []
        for run in [*self.protocols, *self.random]:
            c = run.batch.counts()
            parts.append(f"{run.name}: mean {run.batch.n_positive.mean():.0f} positives, "
                         f"{c['singleton']} singleton / {c['compact']} compact / {c['unbounded']} unbounded"
                         + (f" / {c['degenerate']} degenerate" if c["degenerate"] else ""))
        return "; ".join(parts) + "."

    def _slide_claim(self, sparse: LayerRun, quick: bool) -> Claim:
        """The slide's claim; undecided (not refuted) when the layer is outside its regime."""
        sc = sparse.batch.counts()
        measured = (f"{sparse.name}: mean {sparse.batch.n_positive.mean():.0f} positives; "
                    f"compact {sc['compact']}, unbounded {sc['unbounded']}")
        holds = self._in_regime(sparse) and sc["compact"] > 0 and sc["unbounded"] > 0
        if not self._in_regime(sparse):
            holds = None
            measured += (" — outside the slide's regime of 300–1,000, so this "
                         f"{'quick ' if quick else ''}configuration cannot decide the claim")
        return Claim("Slide: samples with 300–1,000 positive outputs, pre-images finite or infinite",
                     measured, holds)

    def claims(self, quick: bool) -> list[Claim]:
        std, sparse = self.protocols[0], self.protocols[-1]
        out = [Claim(f"More than {self.n_input} positive outputs allow a singleton pre-image; ordinary "
                     "training gives singletons throughout (PAPERS.md §2)",
                     f"{std.name}: min {std.batch.n_positive.min()} positives, "
                     f"{std.batch.counts()['singleton']}/{len(std.batch.results)} singleton",
                     std.batch.counts()["singleton"] == len(std.batch.results)),
               self._slide_claim(sparse, quick)]
        shifted = [r for r in self.random if r.wendel_compact is not None]
        if shifted:
            r = shifted[0]
            nonsingle = len(r.batch.results) - r.batch.counts()["singleton"]
            frac = r.batch.counts()["compact"] / nonsingle if nonsingle else float("nan")
            out.append(Claim("Random layers: Wendel's theorem predicts compact pre-images almost always",
                             f"{r.name}: compact fraction {frac:.3f} of non-singletons, Wendel "
                             f"{r.wendel_compact:.3f}", frac >= 0.9 if nonsingle else None))
        out.append(self._exactness_claim())
        return out

    def _exactness_claim(self) -> Claim:
        """Every kind certified; degenerate cases (ill-conditioned at float64) leave it open."""
        results = [r for run in [*self.protocols, *self.random] for r in run.batch.results]
        degenerate = [r for r in results if r.kind == "degenerate"]
        exact = sum(r.exact_signs for r in results)
        measured = (f"{len(results)} samples, {len(degenerate)} degenerate; "
                    f"{exact} pre-activation signs decided in exact arithmetic")
        if degenerate:
            worst = max(r.condition or float("inf") for r in degenerate)
            measured += f"; largest condition number {worst:.3g}"
        return Claim("Every pre-image's kind certified (none degenerate at float64 precision)", measured,
                     True if not degenerate else None)


def train_layer(data, beta: float, epochs: int, seed: int, device: str = "cpu", hidden: int = HIDDEN):
    """Train 784→3500→10 with Adam, optionally with the L1 activation penalty; the plain MLP and
    its `TrainResult`."""
    from ..train import TrainConfig, train

    torch.manual_seed(seed)
    model = nets.mlp([int(np.prod(data.spec.shape)), hidden, data.spec.classes])
    layers = list(model)
    wrapped = nn.Sequential(*layers[:3], ActivationL1(beta), *layers[3:])
    cfg = TrainConfig(epochs=epochs, lr=1e-3, optimizer="adam", batch_size=128, seed=seed, device=device)
    result = train(wrapped, data, cfg)
    clean = nn.Sequential(*[m for m in wrapped if not isinstance(m, ActivationL1)]).cpu().eval()
    return clean, result


def _first_layer(model: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    lin = model[1]
    return lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()


def _wendel_mean(batch: BatchResult, m: int) -> float | None:
    """Mean Wendel probability of omnidirectionality over the samples with a null space."""
    vals = [wendel_probability(m - r.n_positive, r.null_dim) for r in batch.results
            if r.null_dim and r.kind != "degenerate"]
    return float(np.mean(vals)) if vals else None


def reproduce(mnist: str, quick: bool = True, seed: int = 0, n_samples: int | None = None,
              epochs: int | None = None, beta: float = SPARSE_BETA, workers: int | None = None,
              tol: Tolerances = Tolerances(), hidden: int = HIDDEN) -> PreimageReproduction:
    """Train the standard and the sparse 784→3500→10 MLP and classify test pre-images.

    Arguments:
        mnist: MNIST source for `reluscope.data.load` (an IDX folder, torchvision:MNIST).
        quick: reduced configuration (100 samples) instead of 1,000; both train 5 epochs
            (seconds on the MNIST split), so the quick sparse layer is in the slide's regime.
        seed: seed of the split, the initialisation, training and sample choice.
        n_samples, epochs: override the configuration's values.
        beta: strength of the L1 activation penalty of the sparse protocol.
        workers: processes for the classification (default: all cores).
        hidden: width of the hidden layer (3,500 in the paper; smaller for tests).

    Returns:
        A `PreimageReproduction` (counts, histograms, claims).
    """
    from ..data import load

    data = load(mnist, seed=seed)
    n_samples = n_samples or (100 if quick else 1000)
    epochs = epochs or 5
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.test), generator=g)[:n_samples].sort().values
    X = data.test.x[idx].flatten(1).double().numpy()
    runs = []
    for name, b_, how in [("standard", 0.0, f"Adam lr 1e-3, {epochs} epochs"),
                          ("sparse", beta, f"Adam lr 1e-3, {epochs} epochs, L1 activation penalty {beta:g}")]:
        model, result = train_layer(data, b_, epochs, seed, hidden=hidden)
        W, b = _first_layer(model)
        batch = classify_batch(W, b, X, tol, workers=workers, desc=f"pre-images ({name})")
        runs.append(LayerRun(name, how, batch, result.final.get("test_acc", float("nan")),
                             _wendel_mean(batch, hidden), result.history))
    random = _random_layers(X, runs[-1].batch.n_positive.mean(), seed, tol, workers, hidden)
    notes = [f"MNIST split: {len(data.train)} train / {len(data.test)} test ({data.spec.name}); "
             f"{n_samples} test samples per layer.",
             "The paper's training protocol is unknown. Ordinary training leaves far more units active than "
             "there are inputs (all singletons); the L1 activation penalty is our protocol for the slide's "
             "regime.",
             "Wendel's value assumes rows drawn i.i.d. from a symmetric law; the rows left after "
             "conditioning on the sample's activation pattern are not exactly that, so it is a guide."]
    return PreimageReproduction(runs, random, X.shape[1], notes, hidden)


def _random_layers(X, target_positives: float, seed: int, tol, workers, hidden: int) -> list[LayerRun]:
    torch.manual_seed(seed + 1)
    lin = nn.Linear(X.shape[1], hidden).double()
    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    base = classify_batch(W, b, X, tol, workers=workers, desc="pre-images (random)")
    # One bias shift for the whole layer, chosen on the samples so the mean count matches.
    z = X @ W.T + b
    shift = float(np.quantile(z, 1 - target_positives / hidden))
    shifted = classify_batch(W, b - shift, X, tol, workers=workers, desc="pre-images (random, shifted)")
    return [LayerRun("random", f"PyTorch default init (uniform ±1/√{X.shape[1]})", base,
                     wendel_compact=_wendel_mean(base, hidden)),
            LayerRun("random, shifted bias", f"same weights, bias − {shift:.3g} (matches the sparse "
                     "layer's mean positives)", shifted, wendel_compact=_wendel_mean(shifted, hidden))]
