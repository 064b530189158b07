"""Benchmark: matrix-free Jacobian spectra (`method="lanczos"`) against the exact dense path.

Run: `.venv/bin/python bench/bench_matfree.py [--layers 2,4] [--k 20] [--probes 16]`.

One random 3×32×32 input through the CIFAR CNN (`nets.cifar_cnn`, random weights, float64).
Baseline (same run, same threads): `spectra(..., method="exact")` on the same outputs
(forward-mode Jacobians, Gram eigensolver / SVD). Ours: `spectra(..., method="lanczos")`:
top-k by Golub–Kahan–Lanczos and the SLQ density of J^T J. Printed per output: the max
relative error of the top k against exact, the Kolmogorov distance of the SLQ CDF to the exact
eigenvalues of J^T J and its stated bound; then both times and their ratio. At CIFAR size the
exact path is feasible and fast (the point of comparison); the matrix-free path exists for
inputs where the dense Jacobian does not fit (its memory is O(steps·(m + n))).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from reluscope import nets
from reluscope.jacobian import spectra


def ks(exact_sv: np.ndarray, n: int, density) -> float:
    lam = np.concatenate([exact_sv**2, np.zeros(n - len(exact_sv))])
    lam = np.where(lam <= n * np.finfo(float).eps * exact_sv[0] ** 2, 0.0, lam)
    t = np.unique(np.concatenate([lam, density.nodes.ravel()]))
    exact = np.searchsorted(np.sort(lam), t, side="right") / n
    return float(np.abs(exact - density.cdf_at(t)[0]).max())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", default="2,4", help="layer indices of the CIFAR CNN (pre and post of each)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--probes", type=int, default=16)
    a = p.parse_args()
    torch.manual_seed(0)
    model = nets.cifar_cnn()
    x = torch.rand(1, 3, 32, 32)
    layers = [int(s) for s in a.layers.split(",")]
    print(f"CIFAR CNN, one random 3x32x32 input, float64, layers {layers}, {torch.get_num_threads()} threads")
    t = time.perf_counter()
    exact = spectra(model, x, layers=layers, method="exact")
    t_exact = time.perf_counter() - t
    t = time.perf_counter()
    lz = spectra(model, x, layers=layers, method="lanczos", k=a.k, probes=a.probes)
    t_mf = time.perf_counter() - t
    print(f"{'output':<16}{'rank ex/est [lo,hi]':<26}{'top-k max rel err':>18}{'bound':>10}"
          f"{'KS':>8}{'KS bound':>10}{'steps':>7}{'products':>10}")
    for e, m in zip(exact, lz):
        sv, mf = e.singular_values[0], m.matfree[0]
        kk = min(a.k, int(e.rank[0]))
        err = float(np.max(np.abs(mf.top[:kk] - sv[:kk]) / sv[:kk]))
        d = ks(sv, e.inputs, mf.density)
        rk = f"{e.rank[0]}/{m.rank[0]} [{mf.rank_lo:.0f},{mf.rank_hi:.0f}]"
        print(f"{e.output.label:<16}{rk:<26}{err:>18.2e}{m.error_bound[0]:>10.1e}{d:>8.3f}"
              f"{mf.density.ks_bound:>10.3f}{mf.steps:>7}{mf.products:>10}")
    print(f"exact (baseline): {t_exact:.2f} s   lanczos top-{a.k} + density ({a.probes} probes): {t_mf:.2f} s"
          f"   ratio lanczos/exact: {t_mf / t_exact:.2f}")


if __name__ == "__main__":
    main()
