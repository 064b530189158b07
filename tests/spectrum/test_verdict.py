"""The issue's acceptance cases: Gaussian, Gaussian + 3 spikes, Student-t(2)."""

import numpy as np
import pytest

from reluscope.spectrum import analyze_matrix, ks_noise_level


@pytest.mark.parametrize("shape", [(300, 100), (128, 128), (200, 600), (784, 256)])
@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_reads_random_like(shape, seed):
    w = np.random.default_rng(seed).normal(0, 0.05, size=shape)
    ls = analyze_matrix(w, seed=seed)
    assert ls.verdict.label == "random-like"
    assert ls.mp.n_outliers == 0 and not ls.verdict.heavy_tailed
    assert ls.mp.ks_bulk <= ks_noise_level(min(shape))
    assert ls.weight.gaussian
    # the Gaussian reference of the same shape sits at the same noise level
    assert ls.gaussian_mp.n_outliers == 0


@pytest.mark.parametrize("shape", [(400, 200), (256, 256), (300, 900)])
@pytest.mark.parametrize("seed", [0, 1])
def test_three_planted_spikes(shape, seed):
    rng = np.random.default_rng(seed)
    n, p = max(shape), min(shape)
    g = rng.standard_normal(shape)
    u = np.linalg.qr(rng.standard_normal((shape[0], 3)))[0]
    v = np.linalg.qr(rng.standard_normal((shape[1], 3)))[0]
    theta = np.array([2.0, 3.0, 4.0]) * np.sqrt(n) * (p / n) ** 0.25  # 2-4x the BBP threshold
    ls = analyze_matrix(g + (u * theta) @ v.T, seed=seed)
    assert ls.mp.n_outliers == 3
    assert ls.verdict.label == "spiked" and ls.verdict.spiked and not ls.verdict.heavy_tailed
    assert ls.verdict.bulk_mp


@pytest.mark.parametrize("shape", [(400, 200), (256, 128), (784, 256), (300, 300)])
@pytest.mark.parametrize("seed", [0, 1])
def test_student_t2_reads_heavy_tailed(shape, seed):
    w = np.random.default_rng(seed).standard_t(2, size=shape)
    ls = analyze_matrix(w, seed=seed)
    assert ls.verdict.label == "heavy-tailed" and ls.verdict.heavy_tailed
    assert ls.tail.alpha < 4
    assert not ls.weight.gaussian and ls.weight.excess_kurtosis > 3


def test_small_matrix_is_too_small():
    ls = analyze_matrix(np.random.default_rng(0).standard_normal((10, 64)))
    assert ls.verdict.label == "too small"


def test_ten_separated_spikes_are_spikes_not_a_tail():
    # more than sqrt(p) outliers, but clear of the threshold above an MP bulk (one per class, say)
    rng = np.random.default_rng(5)
    n, p = 400, 200
    g = rng.standard_normal((n, p))
    u = np.linalg.qr(rng.standard_normal((n, 10)))[0]
    v = np.linalg.qr(rng.standard_normal((p, 10)))[0]
    theta = np.linspace(2.0, 4.0, 10) * np.sqrt(n) * (p / n) ** 0.25
    ls = analyze_matrix(g + (u * theta) @ v.T)
    assert ls.mp.n_outliers == 10
    assert ls.verdict.label == "spiked" and not ls.verdict.heavy_tailed


def test_first_reason_names_the_measure_that_decided_the_label():
    """The report's sanity-check claim quotes `reasons[0]`: every label other than random-like states
    the value that decided it and the bound it crossed."""
    import re
    from dataclasses import replace

    from reluscope.spectrum import PowerLawFit, judge

    decided = re.compile(r"\d (<|>|<=|>=) [^\d;()]*\d")
    rng = np.random.default_rng(0)
    n, p = 400, 200
    g = rng.standard_normal((n, p))
    u = np.linalg.qr(rng.standard_normal((n, 3)))[0]
    v = np.linalg.qr(rng.standard_normal((p, 3)))[0]
    theta = np.array([2.0, 3.0, 4.0]) * np.sqrt(n) * (p / n) ** 0.25
    gauss = analyze_matrix(g)
    mp, tail, entries = gauss.mp, gauss.tail, gauss.weight
    many = replace(mp, n_outliers=40, outliers=tuple(mp.threshold * np.linspace(1.3, 1.01, 40)))
    cases = {
        "spiked": analyze_matrix(g + (u * theta) @ v.T).verdict,
        "heavy-tailed": analyze_matrix(rng.standard_t(2, size=(300, 300))).verdict,
        "too small": analyze_matrix(rng.standard_normal((10, 64))).verdict,
        "non-MP bulk": judge(replace(mp, ks_bulk=1.0), tail, entries),  # no outliers, bulk off MP
        "many outliers, no tail": judge(replace(many, ks_bulk=1.0), PowerLawFit(8.0, 0.5, 1.0, 40, 0.05),
                                        entries),
    }
    assert cases["non-MP bulk"].label == cases["many outliers, no tail"].label == "non-MP bulk"
    for name, verdict in cases.items():
        assert verdict.label in (name, "non-MP bulk")
        assert decided.search(verdict.reasons[0]), (name, verdict.reasons[0])
    assert "alpha + 2 se = 9 >= 4" in cases["many outliers, no tail"].reasons[0]
    assert "1 > noise level" in cases["non-MP bulk"].reasons[0]
