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
