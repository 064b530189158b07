"""Power-law tail fit: Pareto samples, and agreement with the `powerlaw` package."""

import numpy as np
import pytest

from reluscope.spectrum import fit_power_law


@pytest.mark.parametrize("alpha", [1.8, 2.5, 4.0])
def test_recovers_pareto_exponent(alpha):
    rng = np.random.default_rng(int(alpha * 10))
    x = (1 - rng.random(3000)) ** (-1 / (alpha - 1))
    fit = fit_power_law(x)
    assert abs(fit.alpha - alpha) < 4 * fit.alpha_se + 0.05
    assert fit.ks < 0.05


def test_pareto_tail_on_top_of_uniform_bulk_finds_xmin():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, 2000), 1 + (1 - rng.random(500)) ** (-1 / 1.5) - 1 + 1.0])
    fit = fit_power_law(x)
    assert fit.xmin >= 0.9 and abs(fit.alpha - 2.5) < 0.3


def test_agrees_with_powerlaw_package():
    # Same estimator (continuous MLE, xmin by minimum KS); powerlaw's KS uses the one-sided
    # empirical cdf (i/n), ours the two-sided one, so the chosen xmin may differ slightly.
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(0.1, 1.0, 400), (1 - rng.random(400)) ** (-1 / 1.2)])
    ours = fit_power_law(x)
    ref = powerlaw.Fit(x, verbose=False)
    assert ours.alpha == pytest.approx(ref.alpha, abs=2 * ours.alpha_se)
    assert ours.xmin == pytest.approx(ref.xmin, rel=0.2)


def test_too_few_values_give_nan():
    assert np.isnan(fit_power_law([1.0, 2.0, 3.0]).alpha)
