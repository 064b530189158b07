"""The mask-product form equals the Jacobian; the row-removal lemma against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import ShapeError, UnsupportedLayerError
from reluscope.jacobian import check_mask_product, jacobians, lemma_check, lemma_checks, mask_product


@pytest.mark.parametrize("model, shape", [
    (lambda: nets.mlp([7, 11, 9, 3]), (7,)),
    (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)),
     (1, 4, 4)),
])
def test_mask_product_equals_jacobian(model, shape):
    torch.manual_seed(0)
    m = model()
    x = torch.randn(3, *shape)
    P = mask_product(m, x)
    J = jacobians(m, x)
    assert list(P) == list(J)
    for o in P:
        torch.testing.assert_close(P[o], J[o], rtol=1e-12, atol=1e-12)
    chk = check_mask_product(m, x)
    assert chk.ok and chk.max_rel_error < 1e-12


def test_mask_product_against_autograd_directly():
    torch.manual_seed(1)
    m = nets.mlp([5, 8, 2]).double()
    x = torch.randn(5, dtype=torch.float64)
    P = mask_product(m, x)
    last = list(P.values())[-1][0]
    ref = torch.autograd.functional.jacobian(lambda v: m(v.unsqueeze(0))[0], x)
    torch.testing.assert_close(last, ref)


def test_mask_product_rejects_max_pooling():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(8, 2))
    with pytest.raises(UnsupportedLayerError, match="jacobians"):
        mask_product(m, torch.randn(1, 1, 4, 4))


def _brute_force(A: np.ndarray, removed: np.ndarray):
    """σ_min of D_I A by SVD and the lemma's c_k for every removed row in the row space."""
    AK = A[~removed]
    s = np.linalg.svd(AK, compute_uv=False)
    tol = max(A.shape) * np.finfo(float).eps * s[0]
    s = s[s > tol]
    _, _, vt = np.linalg.svd(AK, full_matrices=False)
    V = vt[:len(s)].T
    M = AK.shape[0]
    cs = []
    for k in np.flatnonzero(removed):
        a = A[k]
        if np.linalg.norm(V.T @ a) >= np.linalg.norm(a) * (1 - 1e-8):
            cs.append(math.sqrt(M) * np.abs(AK @ a).max() / np.linalg.norm(a))
    return s[-1], (min(cs) if cs else math.inf), len(cs)


@pytest.mark.parametrize("m, n, p", [(30, 8, 0.4), (12, 20, 0.5), (25, 10, 0.7)])
def test_lemma_check_matches_brute_force(m, n, p):
    rng = np.random.default_rng(m + n)
    A = rng.standard_normal((m, n))
    removed = rng.random(m) < p
    chk = lemma_check(torch.from_numpy(A), torch.from_numpy(removed))
    sigma, c, applicable = _brute_force(A, removed)
    assert chk.sigma_min == pytest.approx(sigma, rel=1e-9)
    assert chk.applicable == applicable and chk.kept == int((~removed).sum())
    assert chk.c_bound == pytest.approx(c, rel=1e-9) if applicable else chk.c_bound == math.inf
    assert chk.holds and chk.norm_bound <= chk.c_bound and chk.sigma_min <= chk.projected_bound


def test_lemma_is_tight_for_a_weakly_correlated_row():
    # Kept rows: identity scaled; the removed row is nearly orthogonal to all but one.
    A = torch.cat([torch.eye(4), torch.tensor([[1e-3, 0.0, 0.0, 1.0]])])
    A[3, 3] = 0.01  # a small singular value along e_4 ...
    chk = lemma_check(A, [4])
    # ... which the removed row a_k ≈ e_4 exposes: c_k = 2 * 0.01 / ||a_k||.
    assert chk.sigma_min == pytest.approx(0.01, rel=1e-6)
    assert chk.c_bound == pytest.approx(2 * 0.01 / math.hypot(1e-3, 1.0), rel=1e-6)
    assert chk.holds


def test_lemma_bad_input():
    with pytest.raises(ShapeError):
        lemma_check(torch.zeros(3), [0])
    with pytest.raises(ShapeError):
        lemma_check(torch.zeros(3, 2), [5])


def test_lemma_on_a_net_uses_the_post_activation_spectrum():
    from reluscope.jacobian import spectra

    torch.manual_seed(2)
    m = nets.mlp([6, 20, 10, 3])
    x = torch.randn(2, 6)
    checks = lemma_checks(m, x)
    assert len(checks) == 4 and all(c.check.holds for c in checks)
    spec = spectra(m, x)
    for c in checks:
        s = spec[c.output.index]
        r = int(s.rank[c.sample])
        assert c.check.sigma_min == pytest.approx(s.singular_values[c.sample, r - 1], rel=1e-8)
