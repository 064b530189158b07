"""Power-law tail exponent of an eigenvalue density (Clauset, Shalizi, Newman 2009).

`rho(lambda) ~ lambda^-alpha` for `lambda >= xmin`; alpha by maximum likelihood (the
continuous Hill estimator) and `xmin` by minimising the KS distance between the tail and
the fitted law, as the `powerlaw` package and WeightWatcher do, so alpha is comparable
with WeightWatcher's `alpha`. Vectorised over all candidate `xmin` at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._display import Tabular


@dataclass(frozen=True)
class PowerLawFit(Tabular):
    """A power-law tail fit.

    Attributes:
        alpha: density exponent (`rho ~ x^-alpha`); about 2 to 4 for heavy tails,
            large (> 6) for a bounded bulk such as MP.
        alpha_se: standard error `(alpha - 1) / sqrt(n_tail)`.
        xmin: start of the fitted tail.
        n_tail: number of values `>= xmin`.
        ks: KS distance of the tail to the fitted law.
    """

    alpha: float
    alpha_se: float
    xmin: float
    n_tail: int
    ks: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


NAN_FIT = PowerLawFit(float("nan"), float("nan"), float("nan"), 0, float("nan"))


def fit_power_law(values: np.ndarray, min_tail: int = 10, max_tail_fraction: float = 1.0,
                  max_candidates: int = 1000) -> PowerLawFit:
    """Fit a continuous power-law tail to positive `values`.

    Arguments:
        values: samples (e.g. eigenvalues); non-positive ones are ignored.
        min_tail: smallest tail size considered for `xmin`.
        max_tail_fraction: largest tail considered, as a fraction of the values
            (1.0: any `xmin`, as WeightWatcher does).
        max_candidates: at most this many `xmin` candidates, evenly spaced in rank
            (every value is a candidate below that, as in `powerlaw`).

    Returns:
        A `PowerLawFit` (NaNs when fewer than `min_tail` positive values).

    >>> rng = np.random.default_rng(0)
    >>> x = (1 - rng.random(20000)) ** (-1 / 1.5)  # Pareto, density exponent 2.5
    >>> round(fit_power_law(x).alpha, 1)
    2.5
    """
    x = np.sort(np.asarray(values, dtype=float))[::-1]  # descending
    x = x[x > 0]
    m = x.size
    if m < max(min_tail, 2):
        return NAN_FIT
    logs = np.log(x)
    csum = np.cumsum(logs)
    k_max = max(min_tail, int(math.floor(max_tail_fraction * m)))
    ks_idx = np.arange(min_tail, min(k_max, m) + 1)  # tail sizes: top k values, xmin = x[k-1]
    if ks_idx.size > max_candidates:  # the KS scan is O(candidates * m): thin it out evenly
        ks_idx = np.unique(np.linspace(ks_idx[0], ks_idx[-1], max_candidates).round().astype(int))
    # Ties at xmin make sum(log(x/xmin)) zero; skip those candidates.
    xmins = x[ks_idx - 1]
    denom = csum[ks_idx - 1] - ks_idx * np.log(xmins)
    valid = denom > 0
    ks_idx, xmins, denom = ks_idx[valid], xmins[valid], denom[valid]
    if ks_idx.size == 0:
        return NAN_FIT
    alphas = 1.0 + ks_idx / denom
    dists = _ks_all(x, ks_idx, xmins, alphas)
    j = int(np.argmin(dists))
    k, a = int(ks_idx[j]), float(alphas[j])
    return PowerLawFit(alpha=a, alpha_se=(a - 1) / math.sqrt(k), xmin=float(xmins[j]), n_tail=k,
                       ks=float(dists[j]))


def _ks_all(x: np.ndarray, ks_idx: np.ndarray, xmins: np.ndarray, alphas: np.ndarray,
            chunk_bytes: int = 64 * 2**20) -> np.ndarray:
    """KS distance of each candidate tail `x[:k]` to its fitted law, in memory-bounded chunks."""
    m = x.size
    out = np.empty(ks_idx.size)
    rows = max(1, chunk_bytes // (8 * m * 3))
    ranks = np.arange(m)  # position i in descending order: i values strictly above
    for s in range(0, ks_idx.size, rows):
        k = ks_idx[s:s + rows, None]
        xm, al = xmins[s:s + rows, None], alphas[s:s + rows, None]
        # Survival function of the fit at x_i, and the empirical one (i / k above, (i+1)/k at).
        sf = (x[None, :] / xm) ** (1.0 - al)
        inside = ranks[None, :] < k
        d = np.maximum(np.abs(sf - ranks[None, :] / k), np.abs(sf - (ranks[None, :] + 1) / k))
        out[s:s + rows] = np.where(inside, d, 0.0).max(axis=1)
    return out
