"""Theorems 1, 3.1, 3.2 on Gaussian layers: the done-criteria at CI size, full size when slow."""

from __future__ import annotations

import math

import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.shadow._theory import loglog_slope, multilayer, sparse_codes, theorem1


def test_loglog_slope_recovers_a_power_law():
    xs = [0.5, 0.25, 0.1, 0.01]
    slope, icpt = loglog_slope(xs, [3 * x ** 1.3 for x in xs])
    assert slope == pytest.approx(1.3) and math.exp(icpt) == pytest.approx(3)
    assert math.isnan(loglog_slope([1.0, 1.0], [1.0, 2.0])[0])


def test_sparse_codes_have_k_nonzeros():
    h = sparse_codes(5, 100, 7, torch.Generator().manual_seed(0))
    assert ((h > 0).sum(1) == 7).all() and float(h.max()) <= 1.5 and float(h[h > 0].min()) >= 0.5


def test_theorem1_ci_size_done_criteria():
    res = theorem1(ns=(2048,), ks=(32, 64), ratios=(1 / 8, 1 / 16, 1 / 32), seeds=2, codes=32)
    assert 0.5 <= res.slopes["best"] <= 1.5
    for run in res.runs:
        assert run["errors"]["best"] < run["errors"]["none"]
        assert run["k"] < run["t"] < run["k"] ** 2
    by_ratio = {}
    for run in res.runs:
        by_ratio.setdefault(run["ratio"], []).append(run["errors"]["best"])
    means = [sum(v) / len(v) for _, v in sorted(by_ratio.items())]
    assert all(a < b for a, b in zip(means, means[1:]))  # error falls as k/t falls
    assert set(res.to_dict()) >= {"runs", "slopes", "within_bound", "config"}


def test_multilayer_small_runs_and_validates():
    res = multilayer(2, widths=[1024, 512, 256], k_bottom=600, k_top=32, middle=(64, 256), seeds=1,
                     codes=16)
    assert [r["ks"][1] for r in res.runs] == [64, 256]
    for run in res.runs:
        assert run["eps"]["best"] <= run["eps"]["none"] + 1e-12
    assert res.runs[-1]["eps"]["best"] < res.runs[-1]["eps_zero"]  # something is recovered
    with pytest.raises(ConfigError, match="constraints"):
        multilayer(2, k_bottom=2000, k_top=32, middle=(64,))  # k0 > k2²
    with pytest.raises(ConfigError, match="constraints"):
        multilayer(2, k_top=32, middle=(512,), k_ratio=0.25)  # k0 = 4 k1 = 2048 > k2²
    with pytest.raises(ConfigError, match="not both"):
        multilayer(2, k_bottom=600, k_ratio=0.25)
    with pytest.raises(ConfigError, match="depth"):
        multilayer(4)


@pytest.mark.slow
def test_theorem1_full_size():
    res = theorem1(ns=(4096, 8192), ks=(64, 128), ratios=(1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64), seeds=3,
                   codes=64)
    assert 0.5 <= res.slopes["best"] <= 1.5 and 0.5 <= res.tail_slopes["best"] <= 1.5
    assert all(r["errors"]["best"] < r["errors"]["none"] for r in res.runs)


@pytest.mark.slow
def test_multilayer_full_size():
    # k1/k0 = 1/4 held fixed, k0 up to 16000 < k2²: the error keeps falling and leaves saturation
    res = multilayer(2, widths=[32768, 8192, 1024], k_top=128, k_ratio=0.25, middle=(256, 1024, 4000),
                     seeds=1)
    errs = [r["relative"]["best"] for r in res.runs]
    assert all(a > b for a, b in zip(errs, errs[1:])) and errs[-1] < 0.5
    assert res.slopes_all["best"] > 0  # error falls with k2/k1
    res3 = multilayer(3)
    assert len(res3.runs) > 0
