"""Classify many samples of one layer, in parallel processes, with a progress bar."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import numpy as np

from .._display import Tabular
from .._distribute import default_workers, map_samples
from .._frames import frame
from .._progress import progress
from ..errors import ConfigError, ShapeError
from ._classify import KINDS, PreimageResult, check_layer, classify
from ._tol import Tolerances


@dataclass(frozen=True)
class BatchResult(Tabular):
    """Per-sample pre-image results of one layer.

    Attributes:
        results: one `PreimageResult` per sample, in input order.
        seconds: wall time of the whole batch.
        workers: number of processes used.
    """

    results: tuple[PreimageResult, ...]
    seconds: float
    workers: int

    @property
    def kinds(self) -> list[str]:
        return [r.kind for r in self.results]

    @property
    def n_positive(self) -> np.ndarray:
        return np.array([r.n_positive for r in self.results], dtype=int)

    def counts(self) -> dict[str, int]:
        """Number of samples of each kind (every kind listed, zeros included)."""
        c = Counter(self.kinds)
        return {k: c.get(k, 0) for k in KINDS}

    def median_seconds(self) -> float:
        return float(np.median([r.seconds for r in self.results])) if self.results else float("nan")

    def rows(self) -> list[dict]:
        """One table row per sample, in input order."""
        return [dict(sample=i, kind=r.kind, n_positive=r.n_positive, n_tight=r.n_tight, rank=r.rank,
                     null_dim=r.null_dim, method=r.method, reason=r.reason, lp_value=r.lp_value,
                     certificate=r.certificate_kind, exact_signs=r.exact_signs, z_margin_rel=r.z_margin,
                     condition=r.condition, time_s=r.seconds)
                for i, r in enumerate(self.results)]

    def to_frame(self):
        """One row per sample: its kind, what decided it, and the numbers behind the decision."""
        return frame(self.rows())

    def to_dict(self, samples: bool = True) -> dict:
        pos = self.n_positive
        out = dict(n=len(self.results), counts=self.counts(), seconds=self.seconds, workers=self.workers,
                   median_seconds_per_sample=self.median_seconds(),
                   n_positive=dict(mean=float(pos.mean()) if len(pos) else float("nan"),
                                   min=int(pos.min()) if len(pos) else 0,
                                   max=int(pos.max()) if len(pos) else 0),
                   methods=dict(Counter(r.method for r in self.results)))
        if samples:
            out["samples"] = [r.to_dict() for r in self.results]
        return out


_LAYER: dict = {}


def _init_worker(W, b, tol, search) -> None:
    # One BLAS thread per process: the processes already fill the cores, and threaded
    # BLAS inside each of them only contends.
    try:
        from threadpoolctl import threadpool_limits

        _LAYER["limits"] = threadpool_limits(1)
    except ImportError:  # optional; numpy still works, only slower
        pass
    _LAYER.update(W=W, b=b, tol=tol, search=search)


def _classify_one(x) -> PreimageResult:
    return classify(_LAYER["W"], _LAYER["b"], x, _LAYER["tol"], search=_LAYER["search"])


def classify_batch(W, b, X, tol: Tolerances = Tolerances(), *, workers: int | None = None,
                   search: bool = True, desc: str = "pre-images", context: str | None = None,
                   scheduler: str | None = None) -> BatchResult:
    """`classify` every row of X for the layer `ReLU(W x + b)`.

    Arguments:
        W: the layer's weight (array or tensor; computed in float64).
        b: the layer's bias (likewise).
        X: samples `(N, n)` (or `(N, *shape)` with n entries each).
        tol: tolerances, as for `classify`.
        workers: processes (default: the available cores; 1 runs in this process).
        search: use the cheap certificate searches before any LP.
        desc: label of the progress bar.
        context: multiprocessing start method. Default "fork" where available: workers
            inherit the layer without a copy and scripts need no `if __name__ == "__main__"`
            guard (the workers run NumPy/SciPy/HiGHS only, never torch); else "spawn".
        scheduler: address of a Dask scheduler (`tcp://host:8786`): the samples run there in
            chunks (`reluscope._distribute.map_samples`), with the same results in the same
            order; `workers` and `context` are then ignored.

    Returns:
        A `BatchResult` (results in the order of X).

    >>> rng = np.random.default_rng(0)
    >>> W, b = rng.standard_normal((20, 3)), rng.standard_normal(20)
    >>> classify_batch(W, b, rng.standard_normal((5, 3)), workers=1).counts()["degenerate"]
    0
    """
    W, b, _ = check_layer(W, b)
    if hasattr(X, "detach"):
        X = X.detach().cpu().double().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 1 or len(X) == 0:
        raise ShapeError("X holds no samples; pass an array (N, n) with N >= 1")
    X = X.reshape(len(X), -1)
    if X.shape[1] != W.shape[1]:
        raise ShapeError(f"samples have {X.shape[1]} entries but W has {W.shape[1]} columns")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    workers = min(workers, len(X))
    start = time.perf_counter()
    if scheduler:
        results = map_samples(partial(classify, W, b, tol=tol, search=search), X, scheduler=scheduler,
                              desc=desc)
    elif workers == 1:
        _init_worker(W, b, tol, search)
        try:
            results = [_classify_one(x) for x in progress(X, desc=desc, total=len(X))]
        finally:
            limits = _LAYER.pop("limits", None)
            if limits is not None:
                limits.restore_original_limits()
    else:  # the layer reaches the forked workers once, not with every chunk
        results = map_samples(partial(classify, W, b, tol=tol, search=search), X, workers=workers,
                              desc=desc, context=context)
    return BatchResult(tuple(results), time.perf_counter() - start, workers)
