"""Pre-image classification at paper scale: ours vs the naive LP form, in the same run.

Layer: the first layer (3500 x 784) of a 784->3500->10 MLP trained on the MNIST split
with the sparse protocol of `reluscope.preimage._reproduce` (the slide's regime of
300-1,000 positive outputs, where the omnidirectionality test decides). The trained
layer is cached in ~/.cache/reluscope/ (delete it to retrain, about 1-3 minutes).

Per sample, both pipelines compute the same null space (SVD of the active rows); then
- naive: maximise t s.t. M^T lambda = 0, sum(lambda) = 1, lambda_i >= t written as k
  inequality rows, scipy.optimize.linprog (HiGHS) - the slowness anchor of PAPERS.md §2;
- ours: `reluscope.preimage.classify` (rank test, certificate searches, efficient LP).

Usage: .venv/bin/python bench/bench_preimage.py [--samples 50] [--naive-samples 8]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per process: fair and steady

import numpy as np  # noqa: E402

CACHE = Path.home() / ".cache" / "reluscope" / "bench_preimage_layer.npz"
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def trained_layer(seed: int = 0):
    if CACHE.exists():
        f = np.load(CACHE)
        return f["W"], f["b"], f["X"], float(f["acc"])
    from reluscope.data import load
    from reluscope.preimage._reproduce import SPARSE_BETA, _first_layer, train_layer

    data = load(str(MNIST), seed=seed)
    model, result = train_layer(data, SPARSE_BETA, epochs=5, seed=seed)
    W, b = _first_layer(model)
    X = data.test.x.flatten(1).double().numpy()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, W=W, b=b, X=X, acc=result.final["test_acc"])
    return W, b, X, float(result.final["test_acc"])


def naive(W, b, x, time_limit: float | None = None) -> tuple[str, float]:
    """Null space by SVD, then the naive LP form; returns (kind, seconds)."""
    from reluscope.preimage import Tolerances, is_omnidirectional, numerical_rank

    start = time.perf_counter()
    z = W @ x + b
    P = z > 0
    _, s, Vt = np.linalg.svd(W[P], full_matrices=True)
    rank, _ = numerical_rank(s, Tolerances())
    if rank == W.shape[1]:
        return "singleton", time.perf_counter() - start
    M = W[~P] @ Vt[rank:].T
    res = is_omnidirectional(M, search=False, naive=True, time_limit=time_limit)
    kind = {True: "compact", False: "unbounded", None: "not decided"}[res.omnidirectional]
    return kind, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--naive-samples", type=int, default=6, help="samples for the (slow) naive form")
    ap.add_argument("--naive-limit", type=float, default=120.0,
                    help="seconds per naive LP; a sample that hits it counts with the limit (a lower bound)")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    from reluscope.preimage import KINDS, classify, classify_batch

    threadpool_limits(1)
    W, b, X, acc = trained_layer()
    rng = np.random.default_rng(0)
    X = X[np.sort(rng.choice(len(X), args.samples, replace=False))]
    print(f"layer {W.shape[0]}x{W.shape[1]} (test acc {acc:.3f}), {len(X)} MNIST test samples")

    classify(W, b, X[0]), naive(W, b, X[-1])  # warm-up: imports and first-call costs out of the timings
    ours = [classify(W, b, x) for x in X]
    pos = np.array([r.n_positive for r in ours])
    kinds = {k: sum(r.kind == k for r in ours) for k in KINDS}
    methods = {m: sum(r.method == m for r in ours) for m in sorted({r.method for r in ours})}
    t_ours = np.array([r.seconds for r in ours])
    print(f"positives: mean {pos.mean():.0f}, min {pos.min()}, max {pos.max()}; kinds {kinds}; "
          f"decided by {methods}")
    print(f"ours, 1 process: median {np.median(t_ours):.3f} s/sample over {len(X)} samples")

    start = time.perf_counter()
    batch = classify_batch(W, b, X, workers=2)
    wall = time.perf_counter() - start
    assert batch.kinds == [r.kind for r in ours]
    print(f"ours, 2 worker processes: {wall / len(X):.3f} s/sample wall ({wall:.1f} s for {len(X)}, "
          "process start-up included)")

    n = min(args.naive_samples, len(X))
    t_naive, agree, capped = [], 0, 0
    for i in range(n):
        kind, sec = naive(W, b, X[i], args.naive_limit)
        t_naive.append(sec)
        agree += kind == ours[i].kind
        capped += kind == "not decided" and sec >= args.naive_limit
        print(f"  naive sample {i}: {kind:<10} {sec:7.2f} s   ours: {ours[i].kind:<10} {t_ours[i]:.3f} s",
              flush=True)
    med_naive, med_ours = np.median(t_naive), np.median(t_ours[:n])
    print(f"naive LP form: median {med_naive:.2f} s/sample over the first {n} samples; "
          f"ours on the same samples: {med_ours:.3f} s; kinds agree {agree}/{n}"
          + (f"; {capped} naive LPs stopped at the {args.naive_limit:g} s limit (ratio is a lower bound)"
             if capped else ""))
    print(f"RATIO naive/ours (median, same samples): {'>= ' if capped else ''}{med_naive / med_ours:.0f}x "
          f"(goal >= 50x); ours {np.median(t_ours):.3f} s/sample (goal <= 0.3)")


if __name__ == "__main__":
    main()
