"""Rank decisions: the cheap triangular test never claims more than the SVD shows."""

from __future__ import annotations

import numpy as np

from reluscope.preimage import Tolerances, numerical_rank
from reluscope.preimage._tol import triangular_full_rank


def test_triangular_test_is_sufficient_for_full_rank():
    rng = np.random.default_rng(0)
    tol = Tolerances()
    passed = 0
    for i in range(200):
        n = int(rng.integers(1, 30))
        # R of a matrix whose smallest column scale runs from clearly to barely nonzero
        A = rng.standard_normal((n + 3, n)) * 10.0 ** rng.uniform(-0.5 - 12 * (i % 4 == 0), 0, n)
        R = np.linalg.qr(A, mode="r")
        inv = triangular_full_rank(R, tol)
        s = np.linalg.svd(R, compute_uv=False)
        rank, decided = numerical_rank(s, tol)
        if inv is not None:
            passed += 1
            assert decided and rank == n
            assert np.allclose(inv @ R, np.eye(n), atol=1e-6)
    assert 20 < passed < 200  # both outcomes occur


def test_numerical_rank_band():
    tol = Tolerances(rank=1e-9, band=1e3)
    assert numerical_rank(np.array([1.0, 1e-5]), tol) == (2, True)
    assert numerical_rank(np.array([1.0, 1e-7]), tol) == (2, False)
    assert numerical_rank(np.array([1.0, 1e-10]), tol) == (1, True)
    assert numerical_rank(np.array([]), tol) == (0, True)
