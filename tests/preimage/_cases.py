"""Random and adversarial small layers (n <= 6) for the oracle tests."""

from __future__ import annotations

import numpy as np


def gaussian(rng):
    n = int(rng.integers(1, 7))
    m = int(rng.integers(1, 4 * n + 4))
    return rng.standard_normal((m, n)), rng.standard_normal(m), rng.standard_normal(n)


def correlated(rng):
    """Rows close to one common direction (a few flipped): mostly in a half-space."""
    n = int(rng.integers(2, 7))
    m = int(rng.integers(n, 5 * n + 4))
    v = rng.standard_normal(n)
    W = v + rng.uniform(0.05, 1.0) * rng.standard_normal((m, n))
    flip = rng.random(m) < rng.choice([0.0, 0.05, 0.2])
    W[flip] *= -1
    return W, rng.standard_normal(m), rng.standard_normal(n)


def exact_zeros(rng):
    """Integer layers where chosen pre-activations are exactly zero (exact arithmetic)."""
    n = int(rng.integers(1, 7))
    m = int(rng.integers(1, 4 * n + 4))
    W = rng.integers(-3, 4, (m, n)).astype(float)
    x = rng.integers(-2, 3, n).astype(float)
    b = rng.integers(-4, 5, m).astype(float)
    tight = rng.random(m) < rng.uniform(0.2, 0.9)
    b[tight] = -(W[tight] @ x)
    return W, b, x


def tight_at_origin(rng):
    """x = 0 and integer bias with many zeros: the tight rows decide singleton vs compact."""
    n = int(rng.integers(1, 5))
    m = int(rng.integers(1, 4 * n + 4))
    W = rng.integers(-2, 3, (m, n)).astype(float)
    b = rng.integers(-1, 2, m).astype(float)
    return W, b, np.zeros(n)


def rank_deficient(rng):
    """Rows W = C B with B of rank r < n, duplicated and antipodal rows, integer entries."""
    n = int(rng.integers(2, 7))
    r = int(rng.integers(1, n))
    B = rng.integers(-2, 3, (r, n)).astype(float)
    C = rng.integers(-2, 3, (int(rng.integers(r, 3 * n + 3)), r)).astype(float)
    W = C @ B
    extra = rng.integers(-2, 3, (int(rng.integers(0, n + 2)), n)).astype(float)
    W = np.vstack([W, extra, -W[: int(rng.integers(0, len(W) + 1))]])
    x = rng.integers(-2, 3, n).astype(float)
    b = rng.integers(-3, 4, len(W)).astype(float)
    b[rng.random(len(W)) < 0.3] = 0.0
    tight = rng.random(len(W)) < 0.3
    b[tight] = -(W[tight] @ x)
    return W, b, x


GENERATORS = {"gaussian": gaussian, "correlated": correlated, "exact_zeros": exact_zeros,
              "tight_at_origin": tight_at_origin, "rank_deficient": rank_deficient}
