"""The measures of Theorems 3.1/3.2 against closed forms and brute force (seconds)."""

from __future__ import annotations

import math

import pytest
import torch

from reluscope.shadow import _theory_measures as tm
from reluscope.shadow._theory import multilayer, sparse_codes


def _planted(rows=6, m=40, k=8, seed=0):
    return sparse_codes(rows, m, k, torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_support_recovery_exact_is_perfect():
    h = _planted()
    assert tm.support_recovery(h, h) == (1.0, 1.0)
    # a positive rescaling plus small noise off the support ranks the support first: still exact
    assert tm.support_recovery(h, 3 * h + 0.01 * (h == 0)) == (1.0, 1.0)


def test_support_recovery_partial_overlap_closed_form():
    h = _planted(rows=1, m=40, k=8)
    support = torch.nonzero(h[0]).flatten().tolist()
    off = [i for i in range(40) if i not in support]
    est = torch.zeros_like(h)
    est[0, support[:5]] = 2.0  # 5 of the 8 true units, ...
    est[0, off[:3]] = 1.0  # ... and 3 false ones: 8 estimated, 5 right
    assert tm.support_recovery(h, est) == pytest.approx((5 / 8, 5 / 8))
    est[0, off[:3]] = 0.0  # only 5 positive entries: precision 5/5, recall 5/8
    assert tm.support_recovery(h, est) == pytest.approx((1.0, 5 / 8))
    assert tm.support_recovery(h, torch.zeros_like(h)) == (0.0, 0.0)  # nothing estimated
    est[0, off[:3]] = 3.0  # top 4 by value: the 3 false ones (3.0) and one true (2.0)
    assert tm.support_recovery(h, est, top=4) == pytest.approx((1 / 4, 1 / 8))


def test_support_recovery_matches_brute_force():
    gen = torch.Generator().manual_seed(1)
    h = _planted(rows=5, m=30, k=6, seed=2)
    est = torch.relu(h + 0.6 * torch.randn(h.shape, generator=gen, dtype=h.dtype))
    prec, rec = [], []
    for a, b in zip(h, est):
        true = {i for i in range(30) if a[i] != 0}
        ranked = sorted(range(30), key=lambda i: -float(b[i]))[: len(true)]
        chosen = {i for i in ranked if b[i] > 0}
        prec.append(len(chosen & true) / len(chosen) if chosen else 0.0)
        rec.append(len(chosen & true) / len(true))
    assert tm.support_recovery(h, est) == pytest.approx((sum(prec) / 5, sum(rec) / 5))


def test_errors_on_off_support_sum_to_total():
    h = _planted()
    noise = torch.randn(h.shape, generator=torch.Generator().manual_seed(3), dtype=h.dtype)
    est = torch.relu(h + 0.3 * noise)
    split = tm.errors_on_off_support(h, est)
    total = float(((est - h).pow(2).sum(1) / h.pow(2).sum(1)).mean())
    assert split["on"] + split["off"] == pytest.approx(split["total"])
    assert split["total"] == pytest.approx(total)
    zero = tm.errors_on_off_support(h, torch.zeros_like(h))
    assert zero == pytest.approx(dict(on=1.0, off=0.0, total=1.0))


def test_coordinate_errors_closed_form():
    h = torch.tensor([[2.0, 0.0, 1.0, 0.0]])  # tau = 1.5
    est = torch.tensor([[1.0, 1.5, 1.0, 0.0]])
    out = tm.coordinate_errors(h, est)
    assert out["on"] == pytest.approx((1.0 + 0.0) / 2 / 2.25)
    assert out["off"] == pytest.approx((2.25 + 0.0) / 2 / 2.25)
    assert out["all"] == pytest.approx((1.0 + 2.25) / 4 / 2.25)


def test_theorem_conditions_hand_picked():
    def bad(*a, **kw):
        return tm.failing(tm.theorem_conditions(*a, **kw))

    assert bad(1000, 250, 64) == []
    assert bad(5000, 250, 64) == ["k0 < k2^2"]  # 5000 > 64² = 4096
    assert bad(1000, 1200, 64) == ["k1 < k0"]
    assert bad(1000, 50, 64) == ["k2 < k1"]
    assert bad(4032, 1344, 448, 64) == []
    assert bad(2000, 1000, 400, 64) == ["sqrt(k3) k2 < k0"]  # 8 · 400 = 3200 > 2000
    assert bad(5000, 1000, 200, 64) == ["k0 < k3^2"]
    conds = tm.theorem_conditions(1000, 250, 64)
    assert [c["name"] for c in conds] == ["k2 < k1", "k1 < k0", "k0 < k2^2"]
    assert conds[2]["value"] == 1000 and conds[2]["limit"] == 4096
    flat = torch.tensor([[1.0, 1.0, 0.0, 2.0]])  # max 2 over tau 4/3: ratio 1.5
    spiky = torch.tensor([[10.0, 0.1, 0.1, 0.1]])  # max 10 over tau 2.575
    assert bad(1000, 250, 64, h=flat) == []
    assert bad(1000, 250, 64, h=spiky) == ["max h <= 3 tau"]
    assert tm.theorem_conditions(1000, 250, 64, h=flat)[-1]["value"] == pytest.approx(1.5)


def test_bounds_closed_form():
    assert tm.relative_bound(64, 2048, 512) == pytest.approx(16 / 32 * math.log(512))
    h = torch.tensor([[2.0, 0.0, 1.0, 0.0]])  # ||h||² = 5, tau = 1.5
    assert tm.coordinate_bound(h, 100, 4) == pytest.approx(16 * math.log(4) / 100 * 5 / 2.25)


def test_slope_fit_ignores_the_saturated_tail():
    ratios = [2.0 ** -j for j in range(1, 10)]
    errors = [min(1.0, 20 * r ** 1.3) for r in ratios]  # power law, capped at h~ = 0's error
    assert tm.saturated(errors) == [e >= 0.5 for e in errors]
    slope, icpt, n = tm.unsaturated_slope(ratios, errors)
    assert slope == pytest.approx(1.3) and math.exp(icpt) == pytest.approx(20)
    assert n == sum(e < 0.5 for e in errors)
    from reluscope.shadow._theory import loglog_slope

    assert loglog_slope(ratios, errors)[0] < 1.1  # the tail flattens a fit over every point
    keep = [True] * 7 + [False] * 2
    assert tm.unsaturated_slope(ratios, errors, keep=keep)[2] == n - 2
    assert math.isnan(tm.unsaturated_slope(ratios[:3], [0.9, 0.8, 0.7])[0])  # all saturated


def test_multilayer_holds_k1_over_k0_fixed_and_records_measures():
    res = multilayer(2, widths=[1024, 512, 256], k_top=32, middle=(64, 128, 240), k_ratio=0.25, seeds=1,
                     codes=8)
    assert [r["ks"] for r in res.runs] == [[32, 64, 256], [32, 128, 512], [32, 240, 960]]
    for r in res.runs:
        assert r["holds"] and r["bound"] == pytest.approx(tm.relative_bound(32, r["ks"][1], 256))
        for rule in ("none", "theory", "best"):
            assert r["on_support"][rule] + r["off_support"][rule] == pytest.approx(r["relative"][rule])
            assert 0 <= r["precision"][rule] <= 1 and 0 <= r["recall"][rule] <= 1
    lines = []
    multilayer(3, widths=[1024, 512, 256, 128], k_top=32, middle=(40, 48), seeds=1, codes=4,
               echo=lines.append)
    assert len(lines) == 2 and all("conditions hold" in line for line in lines)
    df = res.to_frame()
    assert {"precision_best", "on_support_best", "bound", "failing", "linear"} <= set(df.columns)


def test_regime_and_seed_means():
    res = multilayer(2, widths=[1024, 512, 256], k_top=32, middle=(64, 240), seeds=2, codes=4)
    means = tm.seed_means(res.runs)
    assert len(means) == 2 and means[0]["seeds"] == 2
    assert means[0]["relative"]["best"] == pytest.approx(sum(r["relative"]["best"] for r in res.runs[:2]) / 2)
    assert "predicts nothing" in tm.regime(res.runs)


def _run(ks, bound, best, theory=1.0, holds=True, ratio=None):
    """A synthetic multilayer run (top first `ks`) with the fields the claims and the regime read."""
    rel = dict(none=2.0, theory=theory, best=best)
    return dict(ks=list(ks), ratio=ratio if ratio is not None else ks[0] / ks[1], seed=0, bound=bound,
                holds=holds, conditions=[dict(name="k1 < k0", value=1, limit=2, holds=holds)],
                relative=rel, on_support=dict(rel), off_support={r: 0.0 for r in rel},
                precision={r: 0.5 for r in rel}, recall={r: 0.5 for r in rel})


def test_bound_check_and_caps_closed_form():
    need = 16 * 128 * math.log(1024)
    runs = [_run([128, 4000, 16000], 16 * 128 / 4000 * math.log(1024), 0.3),
            _run([128, 15000, 16256], 16 * 128 / 15000 * math.log(1024), 0.36, theory=1.0),
            _run([128, 16128, 16256], 16 * 128 / 16128 * math.log(1024), 0.95, theory=0.5)]
    assert tm.needed_k_below(runs[0]) == pytest.approx(need)  # 14196
    chk = tm.bound_check(runs)
    assert chk["runs"] == 2 and chk["within"] == 1
    assert chk["worst"] == pytest.approx(0.95 / runs[2]["bound"]) and chk["smallest"] == runs[2]["bound"]
    assert tm.bound_check(runs, "theory")["within"] == 1  # 1.0 > 0.946, 0.5 < 0.88
    assert tm.bound_check(runs[:1])["runs"] == 0 and math.isnan(tm.bound_check(runs[:1])["worst"])
    runs[2]["holds"] = False  # outside the conditions: not counted
    assert tm.bound_check(runs)["runs"] == 1
    assert tm.k_below_cap(128, 2) == 128 ** 2 and tm.k_below_cap(128, 3) == pytest.approx(128 ** 1.5)


def test_regime_states_how_far_from_an_informative_bound():
    n_top = 512
    runs = [_run([64, k, 4 * k], 16 * 64 / k * math.log(n_top), 0.9) for k in (128, 1000)]
    text = tm.regime(runs)
    need = 16 * 64 * math.log(n_top)  # 6388
    assert f"at most {1000 / need:.2g} × 16 k_top ln n_top = {need:.0f}" in text
    assert "conditions cap it at 4096" in text and "predicts nothing" in text and "trend is shown" in text
    runs = [_run([128, k, 16256], 16 * 128 / k * math.log(1024), 0.35) for k in (8192, 15360)]
    text = tm.regime(runs)
    assert "below 1 (h̃ = 0's error) at 1 of 2 runs" in text and "predicts a number" in text
    assert "cap" not in text


def _result(depth, runs, config):
    from reluscope.shadow._theory import MultilayerResult

    errs = [r["relative"] for r in runs]
    slopes, fitted = {}, {}
    for rule in ("none", "theory", "best"):
        slopes[rule], _, fitted[rule] = tm.unsaturated_slope(
            [r["ratio"] for r in runs], [e[rule] for e in errs], keep=[r["holds"] for r in runs])
    return MultilayerResult(depth, runs, slopes, dict(config, saturation=tm.SATURATION), dict(slopes), fitted)


def test_claims_name_the_measure_that_decided_them():
    from reluscope.shadow.report import _multilayer_claim

    n2 = 1024
    # a power law with slope 0.3 over unsaturated runs: "does not hold", naming slope, count and limit
    ks = (2048, 4096, 8192)
    runs = [_run([128, k, 4 * k], 16 * 128 / k * math.log(n2), 0.4 * (128 / k / 0.0625) ** 0.3) for k in ks]
    claim = _multilayer_claim(_result(2, runs, dict(k_ratio=0.25)))
    assert claim.holds is False and "(k1/k0 = 0.25 fixed)" in claim.claim
    assert "does not hold, decided by the slope 0.30" in claim.measured
    assert "over 3 unsaturated runs" in claim.measured
    assert "< 0.5 (needed 0.5–1.5" in claim.measured
    # saturated everywhere: undecided, and says why
    runs = [_run([128, k, 4 * k], 16 * 128 / k * math.log(n2), 0.9) for k in ks]
    claim = _multilayer_claim(_result(2, runs, dict(k_ratio=0.25)))
    assert claim.holds is None and "undecided: 0 unsaturated run(s)" in claim.measured
    assert "bound is ≥ 1 at every run" in claim.measured
    # conditions fail everywhere: undecided, naming the failing condition
    runs = [_run([128, k, 4 * k], 3.0, 0.2, holds=False) for k in ks]
    claim = _multilayer_claim(_result(2, runs, dict(k_ratio=0.25)))
    assert claim.holds is None and "conditions fail at every run (k1 < k0)" in claim.measured
    # the bound below 1 somewhere: decided by the bound, not the slope
    runs = [_run([128, k, 16256], 16 * 128 / k * math.log(n2), e) for k, e in ((8192, 0.33), (15360, 0.36))]
    claim = _multilayer_claim(_result(2, runs, dict(k_bottom=16256)))
    assert claim.holds is True and "(k0 = 16256 fixed)" in claim.claim
    assert "within the proof's bound" in claim.claim
    assert "at 1 of the 1 runs where that bound is below 1" in claim.measured
    runs[1]["relative"]["best"] = 0.99
    claim = _multilayer_claim(_result(2, runs, dict(k_bottom=16256)))
    assert claim.holds is False and "does not hold, decided by the best relative error" in claim.measured
    assert f"largest error/bound {0.99 / runs[1]['bound']:.2f}" in claim.measured


def test_theorem1_claims_name_their_measure():
    from types import SimpleNamespace

    from reluscope.shadow._theory import Theorem1Result
    from reluscope.shadow.report import _theory_claims

    ratios = [1 / 4, 1 / 8, 1 / 16]
    runs = [dict(ratio=r, errors=dict(none=0.5, theory=1.0, best=r ** 0.3)) for r in ratios]
    slopes = dict(none=0.0, theory=0.0, best=0.3)
    t1 = Theorem1Result(runs, slopes, dict(slopes), {r: 1.0 for r in slopes})
    slope, offset = _theory_claims(SimpleNamespace(theorem1=t1, multilayer=[]))
    assert slope.holds is False and "decided by the slope 0.30" in slope.measured
    assert "over 3 runs (needed 0.5–1.5)" in slope.measured
    # only 1/16 ** 0.3 is below the no-offset error 0.5
    assert offset.holds is False and "in 1/3 runs (needed: every run)" in offset.measured
    t1 = Theorem1Result(runs, dict(slopes, best=math.nan), dict(slopes), {r: 1.0 for r in slopes})
    assert "undecided: fewer than two distinct k/t" in _theory_claims(SimpleNamespace(theorem1=t1,
                                                                                       multilayer=[]))[0].measured
