"""Wendel's theorem: how often random rows are omnidirectional."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb, sqrt

import numpy as np

from ..errors import ConfigError
from ._omni import is_omnidirectional
from ._tol import Tolerances


def wendel_probability(k: int, d: int) -> float:
    """P(k i.i.d. rows from a symmetric continuous law in R^d are omnidirectional).

    Wendel (1962): the k points lie in a common half-space through the origin with
    probability `2^-(k-1) * sum_{i<d} C(k-1, i)`; omnidirectional is the complement.
    Computed exactly with integers, so it is right for thousands of rows.

    Arguments:
        k: number of rows (>= 0).
        d: dimension (>= 1).

    Returns:
        The probability as a float.

    >>> wendel_probability(3, 2)  # three random directions in the plane: 1/4
    0.25
    >>> wendel_probability(2, 2)
    0.0
    """
    if k < 0 or d < 1:
        raise ConfigError(f"Wendel's formula needs k >= 0 rows and d >= 1 dimensions, got k={k}, d={d}")
    if k == 0:
        return 0.0
    half = sum(comb(k - 1, i) for i in range(min(d, k)))
    return float(1 - Fraction(half, 2 ** (k - 1)))


@dataclass(frozen=True)
class WendelCheck:
    """A Monte-Carlo estimate of P(omnidirectional) next to Wendel's value."""

    k: int
    d: int
    trials: int
    estimate: float
    stderr: float
    exact: float
    degenerate: int

    @property
    def z_score(self) -> float:
        se = self.stderr if self.stderr > 0 else sqrt(max(self.exact * (1 - self.exact), 1e-12) / self.trials)
        return (self.estimate - self.exact) / se if se > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "z_score": self.z_score}


def monte_carlo_omni(k: int, d: int, trials: int = 500, seed: int = 0,
                     tol: Tolerances = Tolerances()) -> WendelCheck:
    """Estimate P(omnidirectional) for k Gaussian rows in R^d with `is_omnidirectional`.

    Arguments:
        k: rows of the random matrix.
        d: columns of the random matrix.
        trials: number of matrices.
        seed: seed of the NumPy generator (same seed, same estimate).

    Returns:
        A `WendelCheck` (estimate, its standard error, Wendel's exact value).
    """
    rng = np.random.default_rng(seed)
    hits, degenerate = 0, 0
    for _ in range(trials):
        res = is_omnidirectional(rng.standard_normal((k, d)), tol)
        if res.omnidirectional is None:
            degenerate += 1
        hits += bool(res.omnidirectional)
    p = hits / trials
    return WendelCheck(k, d, trials, p, sqrt(p * (1 - p) / trials), wendel_probability(k, d), degenerate)
