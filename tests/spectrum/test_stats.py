"""Entry statistics against scipy.stats and the null rejection rate."""

import numpy as np
import pytest
import torch
from scipy import stats

from reluscope.spectrum import entry_stats


def test_matches_scipy():
    x = np.random.default_rng(0).gamma(3.0, size=2000)
    s = entry_stats(x)
    assert s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std())
    assert s.skewness == pytest.approx(stats.skew(x), rel=1e-9)
    assert s.excess_kurtosis == pytest.approx(stats.kurtosis(x), rel=1e-9)
    ks = stats.kstest(x, "norm", args=(x.mean(), x.std())).statistic
    assert s.ks == pytest.approx(ks, rel=1e-9)
    # scipy's A^2 standardises with ddof=1 and has no small-sample factor: equal to O(1/n)
    n = len(x)
    assert s.ad / (1 + 0.75 / n + 2.25 / n**2) == pytest.approx(stats.anderson(x, "norm").statistic, rel=0.01)
    z = (x - x.mean()) / x.std()
    assert s.beyond_3sigma == pytest.approx(np.mean(np.abs(z) > 3))
    assert not s.gaussian


def test_gaussian_null_rejection_rate_is_about_one_percent():
    rng = np.random.default_rng(1)
    rejected = sum(not entry_stats(rng.normal(2.0, 0.5, size=300)).gaussian for _ in range(300))
    assert rejected <= 12  # ~ 2 x 1% levels, binomial noise


def test_tensor_input_and_degenerate_cases():
    assert entry_stats(torch.randn(500)).n == 500
    const = entry_stats(np.zeros(10))
    assert const.std == 0.0 and not const.gaussian
    assert np.isnan(entry_stats(np.ones(2)).skewness)
