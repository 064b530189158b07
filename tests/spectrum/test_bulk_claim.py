"""The bulk claim's threshold MIN_BULK_FRACTION against Gaussian matrices and planted spikes, and every
"does not hold" of the spectrum claims naming the measure that decided it."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from reluscope.spectrum import SpectrumResult, VerdictRules, analyze_matrix, fit_mp
from reluscope.spectrum._effects import MIN_BULK_FRACTION, PorterThomas, bulk_fraction
from reluscope.spectrum.report import _claims, bulk_failure, gaussian_failure

# "<measure> <value> <comparison> [name of the bound] <bound>", e.g. "bulk fraction 0.850 < 0.9"
DECIDED = re.compile(r"\d [<>] [^\d;()]*\d")


def _planted(n: int, p: int, r: int, seed: int = 0):
    """`G + sum_i theta_i u_i v_i^T` (G standard normal, n x p), theta_i 2-4x the BBP threshold
    `(n p)^(1/4)`; returns the matrix and the thetas."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((n, r)))[0]
    v = np.linalg.qr(rng.standard_normal((p, r)))[0]
    theta = np.linspace(2.0, 4.0, r) * math.sqrt(n) * (p / n) ** 0.25
    return rng.standard_normal((n, p)) + (u * theta) @ v.T, theta


def _result(*layers) -> SpectrumResult:
    return SpectrumResult(tuple(layers), None, (), {"rules": VerdictRules().__dict__}, 0.0)


def test_threshold_clears_one_false_alarm_at_the_smallest_judged_side():
    # a Gaussian matrix's only way below 1 is a Tracy–Widom false alarm; one of them at p = 16 still passes
    assert 1 - 1 / VerdictRules().min_side >= MIN_BULK_FRACTION


@pytest.mark.parametrize("shape", [(16, 16), (32, 27), (32, 64), (64, 64), (256, 64), (64, 288), (128, 128)])
def test_gaussian_matrix_passes_the_bulk_claim(shape):
    n, p = max(shape), min(shape)
    for seed in range(40):
        w = np.random.default_rng(seed).standard_normal(shape)
        lam = np.linalg.eigvalsh(w.T @ w / n if shape[1] < shape[0] else w @ w.T / n)
        mp = fit_mp(lam, n)
        inside = np.mean(lam <= mp.threshold)  # brute force: the share at or below the threshold
        assert inside == bulk_fraction(mp)
        assert mp.n_outliers <= 1 and inside >= 1 - 1 / p >= MIN_BULK_FRACTION  # at most one false alarm
    ls = analyze_matrix(np.random.default_rng(0).standard_normal(shape))
    assert ls.effects.bulk_fraction == 1.0 and bulk_failure(ls) is None


@pytest.mark.parametrize("r", [5, 9, 11, 15])
def test_planted_spikes_each_add_one_outlier_and_decide_the_claim(r):
    n, p = 300, 100
    w, theta = _planted(n, p, r)
    ls = analyze_matrix(w)
    assert ls.mp.n_outliers == r and ls.effects.bulk_fraction == pytest.approx(1 - r / p)
    # BBP: a spike theta' = theta / sqrt(n) of W / sqrt(n) puts an eigenvalue at (1 + t^2)(c + t^2) / t^2
    c, t2 = p / n, (theta / math.sqrt(n)) ** 2
    bbp = np.sort((1 + t2) * (c + t2) / t2)[::-1]
    assert np.array(ls.mp.outliers) == pytest.approx(bbp, rel=0.1)
    fail = bulk_failure(ls)
    if r / p <= 1 - MIN_BULK_FRACTION:
        assert fail is None and _claims(_result(ls))[0].holds
    else:
        assert fail.startswith(f"bulk fraction {1 - r / p:.3f} < {MIN_BULK_FRACTION:g}")
        assert f"{p - r} of {p} eigenvalues inside the MP bulk" in fail
        claim = _claims(_result(ls))[0]
        assert claim.holds is False
        assert f"does not hold, decided by layer matrix: bulk fraction {1 - r / p:.3f} < 0.9" in \
            claim.measured


def test_listed_and_deciding_bulk_fractions_agree():
    # 9 planted spikes in a 300 x 32 matrix: 23/32 = 0.71875 inside, which rounds to 0.719 but must read
    # 0.718 (rounded down, never up to the bound) both in the list of fractions and in the deciding text
    n, p, r = 300, 32, 9
    ls = analyze_matrix(_planted(n, p, r)[0])
    assert ls.mp.n_outliers == r and ls.effects.bulk_fraction == (p - r) / p
    shown = f"{(1000 * (p - r) // p) / 1000:.3f}"  # brute force: integer floor of 1000 (p - r) / p
    assert shown == "0.718"
    measured = _claims(_result(ls))[0].measured
    assert re.findall(r"bulk fraction (\d\.\d+)", measured) == [shown, shown], measured
    assert f"bulk fraction {shown} < 0.9 ({p - r} of {p} eigenvalues" in measured


@pytest.fixture(scope="module")
def gaussian():
    return analyze_matrix(np.random.default_rng(1).standard_normal((300, 100)))


def _failing_layers(g):
    """One layer per way to fail each claim: (claim, layer, deciding measure)."""
    pt_bad = PorterThomas(0.2, 1e-9, 0.02, 20, 8000, True)
    non_mp = replace(g, mp=replace(g.mp, ks_bulk=5 * g.ks_noise), verdict=replace(g.verdict, bulk_mp=False),
                     effects=replace(g.effects, ks_bulk_over_noise=5.0))
    spiked = analyze_matrix(_planted(300, 100, 3)[0])
    student = analyze_matrix(np.random.default_rng(0).standard_t(2, size=(300, 300)))
    ad_only = replace(g, weight=replace(g.weight, ad=5.0, gaussian=False))
    return [
        (bulk_failure, analyze_matrix(_planted(300, 100, 15)[0]), "bulk fraction"),
        (bulk_failure, non_mp, "bulk KS to MP"),
        (bulk_failure, replace(g, effects=replace(g.effects, porter_thomas_bulk=pt_bad)), "Porter–Thomas"),
        (gaussian_failure, student, "entries vs Gaussian: KS"),
        (gaussian_failure, ad_only, "entries vs Gaussian: Anderson–Darling"),
        (gaussian_failure, spiked, "3 outlier(s) above the MP edge"),
        (gaussian_failure, non_mp, "bulk KS to MP"),
        (gaussian_failure, replace(g, effects=replace(g.effects, porter_thomas_top=pt_bad)), "Porter–Thomas"),
    ]


def test_every_failure_names_its_deciding_measure(gaussian):
    assert bulk_failure(gaussian) is None and gaussian_failure(gaussian) is None
    for fail, ls, measure in _failing_layers(gaussian):
        text = fail(ls)
        assert text is not None and text.startswith(measure), (measure, text)
        assert DECIDED.search(text), text  # the value and the bound it crossed


def test_claims_that_do_not_hold_name_layer_and_measure(gaussian):
    for i, (fail, ls, measure) in enumerate(_failing_layers(gaussian)):
        claims = _claims(_result(replace(ls, name=f"L{i}")))
        claim = claims[0] if fail is bulk_failure else claims[1]
        assert claim.holds is False
        assert f"does not hold, decided by layer L{i}: {measure}" in claim.measured
