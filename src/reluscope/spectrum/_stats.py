"""Entry statistics of a weight or bias tensor against the fitted Gaussian."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._display import Tabular

# Critical values at the 1% level when mean and variance are estimated from the data
# (Lilliefors 1967 for KS, large-n; Stephens 1974 "case 3" for Anderson–Darling).
KS_CRIT_1PCT = 1.031
AD_CRIT_1PCT = 1.035
GAUSS_BEYOND_3SIGMA = math.erfc(3 / math.sqrt(2))  # 0.0027


@dataclass(frozen=True)
class EntryStats(Tabular):
    """Moments and Gaussian-fit distances of a set of numbers.

    Attributes:
        n: number of entries.
        mean, std: sample mean and standard deviation (ddof 0) of the fitted Gaussian.
        skewness, excess_kurtosis: 0 for a Gaussian (standard errors about
            `sqrt(6/n)` and `sqrt(24/n)`).
        ks: Kolmogorov–Smirnov distance to N(mean, std^2).
        ks_critical: the 1% critical value of `ks` for a Gaussian sample of size n
            (Lilliefors, parameters estimated): the sampling-noise level.
        ad: Anderson–Darling statistic A^2 (with Stephens' small-sample factor).
        ad_critical: its 1% critical value.
        beyond_3sigma: fraction of entries with |x - mean| > 3 std (Gaussian: 0.0027).
        gaussian: True when neither KS nor AD rejects normality at 1%.
    """

    n: int
    mean: float
    std: float
    skewness: float
    excess_kurtosis: float
    ks: float
    ks_critical: float
    ad: float
    ad_critical: float
    beyond_3sigma: float
    gaussian: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def entry_stats(values) -> EntryStats:
    """Statistics of the entries of `values` (any array or tensor, flattened).

    >>> s = entry_stats(np.random.default_rng(0).standard_normal(10000))
    >>> s.gaussian, abs(s.excess_kurtosis) < 0.2
    (True, True)
    """
    from scipy.special import ndtr

    x = _as_numpy(values).ravel().astype(np.float64)
    n = x.size
    if n < 3 or not np.all(np.isfinite(x)):
        nan = float("nan")
        return EntryStats(n, float(x.mean()) if n else nan, float(x.std()) if n else nan,
                          nan, nan, nan, nan, nan, nan, nan, False)
    mean, std = float(x.mean()), float(x.std())
    if std == 0.0:  # a constant tensor (e.g. zero-initialised bias): no Gaussian to fit
        return EntryStats(n, mean, 0.0, 0.0, float("nan"), 1.0, _ks_crit(n), float("inf"),
                          _ad_crit(n), 0.0, False)
    z = np.sort((x - mean) / std)
    skew = float(np.mean(z**3))
    kurt = float(np.mean(z**4) - 3.0)
    cdf = np.clip(ndtr(z), 1e-300, 1 - 1e-16)
    i = np.arange(1, n + 1)
    ks = float(max(np.max(i / n - cdf), np.max(cdf - (i - 1) / n)))
    a2 = -n - np.mean((2 * i - 1) * (np.log(cdf) + np.log1p(-cdf[::-1])))
    ad = float(a2 * (1 + 0.75 / n + 2.25 / n**2))
    beyond = float(np.mean(np.abs(z) > 3))
    ks_c, ad_c = _ks_crit(n), _ad_crit(n)
    return EntryStats(n, mean, std, skew, kurt, ks, ks_c, ad, ad_c, beyond,
                      bool(ks <= ks_c and ad <= ad_c))


def _ks_crit(n: int) -> float:
    # Large-sample Lilliefors value with the usual small-sample correction (Dallal & Wilkinson).
    return KS_CRIT_1PCT / (math.sqrt(n) - 0.01 + 0.85 / math.sqrt(n))


def _ad_crit(n: int) -> float:
    return AD_CRIT_1PCT


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        return values.detach().cpu().double().numpy()
    return np.asarray(values)
