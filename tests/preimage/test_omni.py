"""is_omnidirectional against a second LP (boundedness of {M z <= 1}) and Wendel's formula."""

from __future__ import annotations

import numpy as np
import pytest

from reluscope.errors import ConfigError, ShapeError
from reluscope.preimage import certifies_direction, is_omnidirectional, monte_carlo_omni, wendel_probability

from ._oracle import oracle_omni


def _matrices(rng, count):
    for i in range(count):
        d = int(rng.integers(1, 7))
        k = int(rng.integers(0, 4 * d + 3))
        style = i % 4
        if style == 0:
            M = rng.standard_normal((k, d))
        elif style == 1:  # correlated rows
            M = rng.standard_normal(d) + rng.uniform(0.1, 1.5) * rng.standard_normal((k, d))
        elif style == 2:  # integer rows with duplicates, antipodes and zero rows
            M = rng.integers(-2, 3, (k, d)).astype(float)
            M = np.vstack([M, -M[: int(rng.integers(0, k + 1))]])
        else:  # rank deficient
            r = int(rng.integers(0, d + 1))
            M = rng.integers(-2, 3, (k, r)).astype(float) @ rng.integers(-2, 3, (r, d)).astype(float)
        yield M


@pytest.mark.parametrize("search", [True, False])
def test_agrees_with_boundedness_oracle(search):
    rng = np.random.default_rng(7)
    outcomes = set()
    for M in _matrices(rng, 120):
        res = is_omnidirectional(M, search=search)
        expected = oracle_omni(M)
        assert res.omnidirectional == expected, (M, res)
        if expected:
            assert res.lam.min() > 0 and abs(res.lam.sum() - 1) < 1e-12
            assert np.linalg.norm(M.T @ res.lam) <= 1e-9 * max(1.0, np.abs(M).max())
        else:
            assert certifies_direction(M, res.direction)
        outcomes.add((expected, res.method))
    assert {True, False} <= {o for o, _ in outcomes}


def test_naive_form_agrees():
    rng = np.random.default_rng(3)
    for _ in range(15):
        M = rng.standard_normal((12, 3)) + rng.uniform(0, 1) * rng.standard_normal(3)
        assert is_omnidirectional(M, naive=True, search=False).omnidirectional == oracle_omni(M)


def test_simplex_vertices_are_omnidirectional():
    d = 5
    M = np.vstack([np.eye(d), -np.ones((1, d))])
    assert is_omnidirectional(M, search=False).omnidirectional
    assert not is_omnidirectional(M[:-1]).omnidirectional  # d rows never suffice


@pytest.mark.parametrize("k, d", [(4, 2), (6, 3), (9, 4), (14, 5)])
def test_wendel_matches_monte_carlo(k, d):
    check = monte_carlo_omni(k, d, trials=300, seed=k)
    se = np.sqrt(check.exact * (1 - check.exact) / check.trials)
    assert check.degenerate == 0
    assert abs(check.estimate - check.exact) <= 4 * se + 1e-12


def test_wendel_closed_form_limits():
    assert wendel_probability(5, 5) == 0.0  # k <= d: never omnidirectional
    assert wendel_probability(3, 1) == pytest.approx(0.75)  # 1-D: not all of one sign
    assert wendel_probability(3000, 300) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        wendel_probability(3, 0)


def test_bad_matrix():
    with pytest.raises(ShapeError, match="2-D"):
        is_omnidirectional(np.ones(3))
    with pytest.raises(ShapeError, match="NaN"):
        is_omnidirectional(np.array([[np.inf, 1.0]]))


def test_a_row_neither_zero_nor_nonzero_is_degenerate_with_its_condition_number():
    M = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1e-7]])  # 1e-7 lies in the band (1e-9, 1e-6]
    res = is_omnidirectional(M)
    assert res.omnidirectional is None and res.condition == pytest.approx(1e7)
    assert res.to_dict()["condition"] == pytest.approx(1e7)
    assert is_omnidirectional(M[:2]).condition is None  # decided: no condition number
