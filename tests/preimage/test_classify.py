"""classify() against the coordinate-LP oracle on hundreds of small layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reluscope.errors import ShapeError
from reluscope.preimage import Tolerances, classify

from ._cases import GENERATORS
from ._oracle import oracle_kind

CASES_PER_KIND = 60  # 5 generators: 300 layers, each classified twice (with and without shortcuts)


def _check_certificate(W, b, x, res):
    z = W @ x + b
    P = z > Tolerances().zero * (np.abs(W) @ np.abs(x) + np.abs(b))
    if res.certificate_kind == "direction":
        v = res.certificate
        assert np.allclose(W[P] @ v, 0, atol=1e-9)
        assert np.all(W[~P] @ v <= 1e-9)
    elif res.certificate_kind == "lambda":
        lam = res.certificate
        assert lam.min() > 0 or res.kind == "singleton"
        # W_Z^T lam must lie in the row space of W_P (zero in the null-space coordinates).
        g = W[~P].T @ lam
        if P.any():
            coef = np.linalg.lstsq(W[P].T, g, rcond=None)[0]
            g = g - W[P].T @ coef
        assert np.linalg.norm(g) <= 1e-8 * max(1.0, np.abs(W).max())


def _agree(kind, rng, cases):
    seen = set()
    for _ in range(cases):
        W, b, x = GENERATORS[kind](rng)
        expected = oracle_kind(W, b, x)
        fast = classify(W, b, x)
        lp_only = classify(W, b, x, search=False)
        assert fast.kind == expected, (kind, W, b, x, fast)
        assert lp_only.kind == expected, (kind, W, b, x, lp_only)
        _check_certificate(W, b, x, fast)
        _check_certificate(W, b, x, lp_only)
        seen.add(expected)
    assert len(seen) >= 2  # the generator is not trivially one-sided


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_agrees_with_oracle(kind):
    _agree(kind, np.random.default_rng(sum(map(ord, kind))), CASES_PER_KIND)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_agrees_with_oracle_many(kind):
    _agree(kind, np.random.default_rng(12345 + len(kind)), 600)


def test_tight_rows_give_a_singleton_below_n_positives():
    # x = 0, three tight rows omnidirectional in the plane, no positive output at all.
    W = np.array([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0], [0.0, 1.0]])
    b = np.array([0.0, 0.0, 0.0, -1.0])
    res = classify(W, b, np.zeros(2))
    assert (res.kind, res.n_positive, res.n_tight) == ("singleton", 0, 3)
    assert res.reason == "tight rows omnidirectional for the point"
    assert oracle_kind(W, b, np.zeros(2)) == "singleton"
    # Move the bias of one tight row off zero: the point is no longer pinned.
    b[1] = -0.5
    assert classify(W, b, np.zeros(2)).kind == oracle_kind(W, b, np.zeros(2)) == "compact"


def test_counts_and_torch_inputs():
    g = torch.Generator().manual_seed(0)
    W, b, x = torch.randn(30, 5, generator=g), torch.randn(30, generator=g), torch.randn(5, generator=g)
    res = classify(W, b, x)
    z = (W.double() @ x.double() + b.double()).numpy()
    assert res.n_positive == int((z > 0).sum())
    assert res.kind == oracle_kind(W.double().numpy(), b.double().numpy(), x.double().numpy())
    if res.kind != "singleton":
        assert res.null_dim == 5 - res.rank


def test_near_zero_preactivation_is_decided_exactly():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    x = np.array([1.0, 1.0])
    b = np.array([-1.0 + 1e-8, 0.0, 0.0])  # z_0 = 1e-8: inside the band above the zero threshold
    res = classify(W, b, x)
    assert res.kind == oracle_kind(W, b, x) == "singleton"
    assert res.exact_signs == 1 and res.z_margin == pytest.approx(0.5e-8, rel=1e-6)
    b[0] = -1.0 - 1e-8  # just negative: row 0 is inactive, not tight; rows 1, 2 leave a ray
    res = classify(W, b, x)
    assert res.kind == oracle_kind(W, b, x) and res.n_positive == 1 and res.n_tight == 0
    b[0] = -1.0  # exactly zero: a tight row, no exact arithmetic needed
    res = classify(W, b, x)
    assert res.exact_signs == 0 and res.n_tight == 1 and res.kind == oracle_kind(W, b, x)


def test_ambiguous_zero_does_not_matter_when_clear_rows_span():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([0.0, 0.0, -2.0 + 1e-8])  # z = (1, 1, 1e-8): the first two rows pin x down
    res = classify(W, b, np.ones(2))
    assert res.kind == "singleton" and res.exact_signs == 1 and res.n_positive == 3


def test_ambiguous_rank_is_degenerate_with_its_condition_number():
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1e-7], [0.0, 0.0, -1.0]])
    res = classify(W, np.array([1.0, 1.0, 1.0, -1.0]), np.ones(3))
    assert res.kind == "degenerate" and "rank" in res.status
    # the three active rows are the whole matrix W_P; its condition number is the oracle
    assert res.condition == pytest.approx(np.linalg.cond(W[:3]), rel=1e-6) and res.condition > 1e6
    W[2, 2] = 0.0  # exactly dependent rows: decided, and the oracle agrees
    b, x = np.array([1.0, 1.0, 1.0, -1.0]), np.ones(3)
    assert classify(W, b, x).kind == oracle_kind(W, b, x)


@pytest.mark.parametrize("args, match", [
    ((np.ones((3, 2)), np.ones(2), np.ones(2)), "b has 2 entries"),
    ((np.ones((3, 2)), np.ones(3), np.ones(4)), "x has 4 entries"),
    ((np.ones(3), np.ones(3), np.ones(3)), "non-empty matrix"),
    ((np.full((3, 2), np.nan), np.ones(3), np.ones(2)), "NaN"),
])
def test_bad_input(args, match):
    with pytest.raises(ShapeError, match=match):
        classify(*args)
