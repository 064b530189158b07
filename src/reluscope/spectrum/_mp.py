"""Marchenko–Pastur law, Tracy–Widom edge margin, robust variance fit, bulk/outlier split.

Convention: `W` is `N x M`, `p = min(N, M)`, `n = max(N, M)`, `q = p / n <= 1`. The
eigenvalues studied are those of the `p x p` matrix `W W^T / n` (or `W^T W / n`), i.e.
`lambda = s^2 / n` for the singular values `s` of `W`. For i.i.d. entries of variance
`sigma^2` they follow MP with ratio `q` and scale `sigma^2`: support
`sigma^2 (1 -+ sqrt(q))^2`, mean `sigma^2`, second moment `sigma^4 (1 + q)`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .._display import Tabular

# Per-layer false-alarm rate of the outlier test: P(largest eigenvalue of a pure
# Gaussian matrix exceeds the threshold) ~ 1 - TW1 cdf at the margin quantile.
DEFAULT_FALSE_ALARM = 1e-3


def mp_edges(q: float, sigma2: float = 1.0) -> tuple[float, float]:
    """Lower and upper edges of the MP support for ratio `q` (0 < q <= 1).

    >>> mp_edges(0.25)
    (0.25, 2.25)
    """
    _check_q(q)
    r = math.sqrt(q)
    return sigma2 * (1 - r) ** 2, sigma2 * (1 + r) ** 2


def mp_density(x: np.ndarray, q: float, sigma2: float = 1.0) -> np.ndarray:
    """MP density at `x` (zero outside the support)."""
    a, b = mp_edges(q, sigma2)
    x = np.asarray(x, dtype=float)
    inside = (x > a) & (x < b)
    out = np.zeros_like(x)
    xi = x[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2 * math.pi * q * sigma2 * xi)
    return out


@functools.lru_cache(maxsize=256)
def _mp_cdf_table(q: float, m: int = 4097) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) on a grid for sigma^2 = 1, by the substitution x = a + (b-a) sin^2(phi),
    which makes the integrand smooth (the square-root edges cancel)."""
    a, b = mp_edges(q)
    phi = np.linspace(0.0, math.pi / 2, m)
    s, c = np.sin(phi), np.cos(phi)
    x = a + (b - a) * s**2
    with np.errstate(divide="ignore", invalid="ignore"):
        integrand = (b - a) ** 2 * 2 * s**2 * c**2 / (2 * math.pi * q * x)
    if q == 1.0:  # x = b sin^2 phi: the 1/x singularity cancels, integrand -> b cos^2(phi)/pi
        integrand = b * c**2 / math.pi
    integrand[~np.isfinite(integrand)] = 0.0
    cdf = np.concatenate([[0.0], np.cumsum((integrand[1:] + integrand[:-1]) / 2 * np.diff(phi))])
    return x, cdf / cdf[-1]


def mp_cdf(x: np.ndarray, q: float, sigma2: float = 1.0) -> np.ndarray:
    """MP cumulative distribution at `x` (accurate to ~1e-6)."""
    _check_q(q)
    gx, gf = _mp_cdf_table(round(float(q), 12))
    return np.interp(np.asarray(x, dtype=float) / sigma2, gx, gf, left=0.0, right=1.0)


def mp_quantile(u: float | np.ndarray, q: float, sigma2: float = 1.0) -> np.ndarray:
    """Inverse of `mp_cdf` (the cdf is strictly increasing on the support)."""
    _check_q(q)
    gx, gf = _mp_cdf_table(round(float(q), 12))
    return sigma2 * np.interp(u, gf, gx)


def fit_sigma2(eigs: np.ndarray, q: float, quantiles=tuple(np.linspace(0.05, 0.8, 16))) -> float:
    """Robust MP scale: least-squares match of empirical quantiles of `eigs` (levels 5% to
    80%) to those of MP(q, 1).

    k spikes move these quantiles by at most k/p in level, unlike the mean (the Frobenius
    norm), which a single strong spike inflates.
    """
    eigs = np.asarray(eigs, dtype=float)
    emp = np.quantile(eigs, quantiles)
    ref = mp_quantile(np.asarray(quantiles), q)
    den = float(np.sum(ref * ref))
    return float(np.sum(emp * ref) / den) if den > 0 else float(np.mean(eigs))


@functools.lru_cache(maxsize=64)
def tracy_widom1_quantile(level: float) -> float:
    """Quantile of the Tracy–Widom (beta = 1) law, `F1^{-1}(level)`.

    F1 is computed as the Fredholm determinant `det(I - K)` on `L^2(s, inf)` with
    `K(x, y) = Ai((x + y)/2) / 2` (Bornemann 2010), by Gauss–Legendre Nystrom.

    >>> round(tracy_widom1_quantile(0.95), 3)
    0.979
    """
    from scipy.optimize import brentq

    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    if level in _TW1_TABLE:  # computed by the root search below (tested), saved ~1 s a process
        return _TW1_TABLE[level]
    return float(brentq(lambda s: tracy_widom1_cdf(s) - level, -8.0, 12.0, xtol=1e-8))


_TW1_TABLE = {0.95: 0.97931605, 0.99: 2.02344928, 0.999: 3.27219606}


def tracy_widom1_cdf(s: float, m: int = 64, length: float = 24.0) -> float:
    """Tracy–Widom (beta = 1) distribution function at `s` (see `tracy_widom1_quantile`)."""
    from scipy.special import airy

    x, w = np.polynomial.legendre.leggauss(m)
    x = s + (x + 1) * length / 2
    sw = np.sqrt(w * length / 2)
    k = 0.5 * airy((x[:, None] + x[None, :]) / 2)[0] * sw[:, None] * sw[None, :]
    return float(np.clip(np.linalg.det(np.eye(m) - k), 0.0, 1.0))


def tw_threshold(n: int, p: int, sigma2: float, false_alarm: float = DEFAULT_FALSE_ALARM) -> float:
    """Largest eigenvalue of `W W^T / n` that a pure-noise matrix exceeds with probability
    about `false_alarm`: Johnstone's (2001) centring and scaling of the real Wishart
    largest eigenvalue, `(mu_np + s * sigma_np) / n`, with `s` the TW1 quantile.
    """
    a, b = math.sqrt(n - 1), math.sqrt(p)
    mu = (a + b) ** 2
    scale = (a + b) * (1 / a + 1 / b) ** (1 / 3)
    s = tracy_widom1_quantile(1.0 - false_alarm)
    return sigma2 * (mu + s * scale) / n


def ks_to_mp(eigs: np.ndarray, q: float, sigma2: float) -> float:
    """Kolmogorov–Smirnov distance between the empirical law of `eigs` and MP(q, sigma2)."""
    e = np.sort(np.asarray(eigs, dtype=float))
    k = e.size
    if k == 0:
        return float("nan")
    f = mp_cdf(e, q, sigma2)
    i = np.arange(1, k + 1)
    return float(max(np.max(i / k - f), np.max(f - (i - 1) / k)))


@dataclass(frozen=True)
class MPFit(Tabular):
    """Eigenvalues of `W W^T / n` against MP.

    Attributes:
        n, p, q: larger and smaller side, ratio `p / n`.
        sigma2: robustly fitted entry variance (quantile matching, `fit_sigma2`).
        edge: MP upper edge `sigma2 (1 + sqrt q)^2`.
        threshold: edge plus the Tracy–Widom margin (`tw_threshold`).
        n_outliers: eigenvalues above `threshold`.
        outliers: those eigenvalues (descending).
        ks_bulk: KS distance of the remaining eigenvalues (the bulk) to MP.
        bulk_max_over_edge: largest bulk eigenvalue / edge (about 1 for MP).
    """

    n: int
    p: int
    q: float
    sigma2: float
    edge: float
    threshold: float
    n_outliers: int
    outliers: tuple[float, ...]
    ks_bulk: float
    bulk_max_over_edge: float

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["outliers"] = list(self.outliers)
        return d


def fit_mp(eigs: np.ndarray, n: int, false_alarm: float = DEFAULT_FALSE_ALARM) -> MPFit:
    """Fit MP to the eigenvalues `eigs` (length p) of `W W^T / n` and split off outliers.

    Arguments:
        eigs: the p eigenvalues, `s^2 / n` for the singular values `s` of an `n x p` matrix.
        n: the larger side of the matrix.
        false_alarm: per-matrix probability that pure noise gives an outlier.

    Returns:
        An `MPFit`.

    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((400, 200))
    >>> fit_mp(np.linalg.eigvalsh(w.T @ w / 400), 400).n_outliers
    0
    """
    e = np.sort(np.clip(np.asarray(eigs, dtype=float), 0.0, None))[::-1]
    p = e.size
    q = p / n
    # Spikes only raise the top eigenvalues, so the lower and middle quantiles used by
    # fit_sigma2 are those of the bulk (up to interlacing shifts of one rank per spike).
    sigma2 = fit_sigma2(e, q)
    thr = tw_threshold(n, p, sigma2, false_alarm)
    k = int(np.sum(e > thr))
    for _ in range(3):
        # Refit on the bulk alone, read as p - k draws from MP: with k spikes removed the
        # bulk's quantile levels are j / (p - k), not j / p (a k/p bias in sigma2 and KS).
        if not 0 < k < p // 2:
            break
        sigma2 = fit_sigma2(e[k:], q)
        thr = tw_threshold(n, p, sigma2, false_alarm)
        k_new = int(np.sum(e > thr))
        if k_new == k:
            break
        k = k_new
    edge = mp_edges(q, sigma2)[1]
    bulk = e[k:]
    ks = ks_to_mp(bulk, q, sigma2) if bulk.size else float("nan")
    bmax = float(bulk[0] / edge) if bulk.size and edge > 0 else float("nan")
    return MPFit(n=n, p=p, q=q, sigma2=sigma2, edge=edge, threshold=thr, n_outliers=k,
                 outliers=tuple(float(v) for v in e[:k]), ks_bulk=ks, bulk_max_over_edge=bmax)


def _check_q(q: float) -> None:
    if not 0.0 < q <= 1.0:
        raise ValueError(f"MP ratio q must be in (0, 1], got {q}")
