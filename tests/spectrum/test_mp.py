"""Marchenko–Pastur law, Tracy–Widom quantiles and the outlier split, against oracles."""

import numpy as np
import pytest
from scipy import integrate

from reluscope.spectrum import (
    fit_mp,
    fit_sigma2,
    mp_cdf,
    mp_density,
    mp_edges,
    mp_quantile,
    tracy_widom1_cdf,
    tracy_widom1_quantile,
    tw_threshold,
)


def _eigs(w):
    n = max(w.shape)
    return np.linalg.eigvalsh((w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T) / n), n


@pytest.mark.parametrize("q", [0.1, 0.5, 1.0])
def test_mp_density_moments_closed_form(q):
    sigma2 = 0.7
    a, b = mp_edges(q, sigma2)
    f = lambda x, k: x**k * mp_density(np.array([x]), q, sigma2)[0]  # noqa: E731
    m = [integrate.quad(f, a, b, args=(k,), limit=200)[0] for k in range(3)]
    assert m[0] == pytest.approx(1.0, abs=1e-6)
    assert m[1] == pytest.approx(sigma2, rel=1e-6)
    assert m[2] == pytest.approx(sigma2**2 * (1 + q), rel=1e-6)


@pytest.mark.parametrize("q", [0.25, 1.0])
def test_mp_cdf_matches_quadrature_and_quantile_inverts(q):
    a, b = mp_edges(q)
    for x in np.linspace(a, b, 7)[1:-1]:
        ref = integrate.quad(lambda t: mp_density(np.array([t]), q)[0], a, x, limit=200)[0]
        assert mp_cdf(x, q) == pytest.approx(ref, abs=1e-5)
    u = np.array([0.1, 0.5, 0.9])
    assert np.allclose(mp_cdf(mp_quantile(u, q), q), u, atol=1e-6)


def test_tracy_widom_quantiles_match_published_table():
    # Tracy & Widom (1996) / Bornemann (2010): TW1 quantiles and mean.
    assert tracy_widom1_quantile(0.95) == pytest.approx(0.9793, abs=2e-4)
    assert tracy_widom1_quantile(0.99) == pytest.approx(2.0234, abs=2e-4)


def test_tracy_widom_table_matches_root_search():
    from reluscope.spectrum._mp import _TW1_TABLE

    for level, value in _TW1_TABLE.items():
        tracy_widom1_quantile.cache_clear()
        assert tracy_widom1_quantile(level + 1e-15) == pytest.approx(value, abs=1e-6)


def test_tracy_widom_mean():
    # E[X] = s_max - integral of F over [s_min, s_max], as F(s_min) ~ 0 and F(s_max) ~ 1
    lo, hi = -9.0, 8.0
    x, w = np.polynomial.legendre.leggauss(48)
    s = lo + (x + 1) * (hi - lo) / 2
    integral = np.sum(w * (hi - lo) / 2 * np.array([tracy_widom1_cdf(v) for v in s]))
    mean = hi - integral
    assert mean == pytest.approx(-1.2065, abs=2e-3)


def test_tw_threshold_false_alarm_rate_by_simulation():
    # Largest eigenvalue of a Gaussian 120 x 60 matrix exceeds the 10% threshold ~10% of the time.
    rng = np.random.default_rng(0)
    thr = tw_threshold(120, 60, 1.0, false_alarm=0.1)
    hits = 0
    for _ in range(300):
        e, n = _eigs(rng.standard_normal((120, 60)))
        hits += e.max() > thr
    assert 0.05 < hits / 300 < 0.16


@pytest.mark.parametrize("shape", [(64, 16), (100, 100), (400, 200), (128, 512), (1000, 40)])
def test_gaussian_matrices_have_no_outliers_and_mp_bulk(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        sigma = rng.uniform(0.01, 3.0)
        e, n = _eigs(rng.standard_normal(shape) * sigma)
        fit = fit_mp(e, n)
        assert fit.n_outliers == 0
        p = min(shape)
        assert fit.sigma2 == pytest.approx(sigma**2, rel=max(0.03, 7 / p))
        assert fit.ks_bulk <= (1 + np.log(p)) / p


def test_planted_spikes_three_outliers_and_robust_variance():
    rng = np.random.default_rng(3)
    n, p = 600, 300
    for seed in range(3):
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((n, p))
        u = np.linalg.qr(rng.standard_normal((n, 3)))[0]
        v = np.linalg.qr(rng.standard_normal((p, 3)))[0]
        theta = np.array([2.0, 3.0, 5.0]) * np.sqrt(n) * (p / n) ** 0.25  # above the BBP threshold
        e, _ = _eigs(g + (u * theta) @ v.T)
        fit = fit_mp(e, n)
        assert fit.n_outliers == 3
        assert fit.sigma2 == pytest.approx(1.0, rel=0.05)
        # the Frobenius-norm variance is inflated by the spikes; the quartile fit is not
        assert e.mean() > 1.05 and abs(fit_sigma2(e, p / n) - 1) < abs(e.mean() - 1)
