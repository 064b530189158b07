"""Theorems 1, 3.1, 3.2 on Gaussian layers: the done-criteria at CI size, full size when slow."""

from __future__ import annotations

import math

import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.shadow import _theory
from reluscope.shadow._reversibility import best_threshold, reversibility
from reluscope.shadow._sampler import sample_chain
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


@pytest.mark.parametrize("shape, chunk", [((50, 48), 160), ((33, 7), 20), ((64, 1024), 5000), ((100, 3), 1),
                                          ((17, 1), 1), ((5, 3), 1), ((40, 40), 1 << 24)])
def test_fill_gaussian_is_one_randn_draw(shape, chunk):
    # chunked draws (a last chunk under 16 numbers joined to the one before) give torch.randn's numbers
    want = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    for dtype in (torch.float32, torch.float64):
        w = torch.empty(shape, dtype=dtype)
        _theory.fill_gaussian(w, torch.Generator().manual_seed(3), chunk=chunk)
        assert torch.equal(w, want.to(dtype))


def test_gaussian_net_and_redraw_match_fresh_draws():
    widths = [48, 32, 16]
    gen = torch.Generator().manual_seed(5)
    net = _theory.gaussian_net(widths, torch.Generator().manual_seed(5))
    for lay, (a, b) in zip(net.layers, zip(widths[:-1], widths[1:])):
        assert torch.equal(lay.weight, torch.randn(b, a, generator=gen)) and lay.is_relu
    cache = _theory._NetCache(torch.float32, "cpu")
    first = cache.get(widths, torch.Generator().manual_seed(5))
    again = cache.get(widths, torch.Generator().manual_seed(6))  # redrawn in place, same object
    fresh = _theory.gaussian_net(widths, torch.Generator().manual_seed(6))
    assert again is first
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(again.layers, fresh.layers))
    x = torch.rand(4, 48)
    assert torch.equal(again(x), fresh(x))
    assert cache.get([48, 16], torch.Generator().manual_seed(6)) is not first  # other widths: a new net


@torch.no_grad()
def _recover_by_hand(net, levels, rhos, rule):
    """Brute force: every layer's product computed afresh for the rule, offsets written out."""
    depth = len(net.layers)
    cur = levels[-1]
    for j, lay in enumerate(net.layers):
        z = (cur.to(lay.weight.dtype) @ lay.weight.T).double()
        target = levels[depth - 1 - j].double()
        c = target.norm(dim=1, keepdim=True)
        if rule == "none":
            off = 0.0
        elif rule == "theory":
            off = 2.0 * math.sqrt(math.log(lay.out_shape[0]) / (rhos[j] * lay.in_shape[0])) * c
        else:
            off = best_threshold(z / c, target / c)[0] * c
        cur = torch.relu(z - off)
    return cur, z


def test_recover_shares_the_bottom_product_exactly():
    widths = [256, 128, 64, 32]
    net = _theory.gaussian_net(widths, torch.Generator().manual_seed(0))
    h = sparse_codes(6, 32, 8, torch.Generator().manual_seed(1))
    rhos = [96 / 256, 48 / 128, 24 / 64, 1.0]
    levels = sample_chain(net, h, layer=2, rho=rhos[:-1][::-1], alpha="paper",
                          generator=torch.Generator().manual_seed(2))
    got = _theory._recover(net, levels, rhos)
    assert list(got) == list(_theory.THEOREM_RULES)
    for rule, (ht, z) in got.items():
        want_ht, want_z = _recover_by_hand(net, levels, rhos, rule)
        assert ht.dtype == torch.float64 and torch.allclose(ht, want_ht, rtol=1e-12, atol=1e-12)
        assert torch.allclose(z, want_z, rtol=1e-12, atol=1e-12)


def test_theorem1_one_layer_per_n_k_seed_gives_the_same_runs():
    # brute force: a fresh layer, fresh codes and a fresh generator per run (the former loop)
    res = theorem1(ns=(256,), ks=(8, 16), ratios=(1 / 2, 1 / 4), seeds=2, codes=4)
    cells = [(n, k, k / r) for n in (256,) for k in (8, 16) for r in (1 / 2, 1 / 4) if k < k / r < k * k]
    i = 0
    for n, k, t in cells:
        for s in range(2):
            gen = torch.Generator().manual_seed(s * 7919 + n * 31 + k)
            net = _theory.gaussian_net([n, n], gen)
            h = sparse_codes(4, n, k, gen)
            rev = reversibility(net, h, layer=0, rho=t / n, alpha="paper", generator=gen)
            run = res.runs[i]
            assert (run["n"], run["k"], run["t"], run["seed"]) == (n, k, t, s)
            assert run["errors"] == {r: rev.errors[r] for r in _theory.THEOREM_RULES}
            i += 1
    assert i == len(res.runs)


def test_float32_products_agree_with_float64():
    kw = dict(widths=[512, 256, 128], k_top=16, middle=(32, 64, 120), seeds=1, codes=8)
    lo, hi = multilayer(2, dtype=torch.float32, **kw), multilayer(2, dtype=torch.float64, **kw)
    for a, b in zip(lo.runs, hi.runs):
        for rule in _theory.THEOREM_RULES:
            assert a["relative"][rule] == pytest.approx(b["relative"][rule], rel=1e-5, abs=1e-7)
            assert a["precision"][rule] == pytest.approx(b["precision"][rule], abs=0.02)
    kw = dict(ns=(256,), ks=(8,), ratios=(1 / 2, 1 / 4), seeds=1, codes=8)
    lo, hi = theorem1(dtype=torch.float32, **kw), theorem1(dtype=torch.float64, **kw)
    for a, b in zip(lo.runs, hi.runs):
        assert a["errors"] == pytest.approx(b["errors"], rel=1e-5, abs=1e-7)


def test_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with _theory.one_thread():
        assert torch.get_num_threads() == 1
        with _theory.threads(before):
            assert torch.get_num_threads() == before
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), _theory.one_thread():
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before


def test_multilayer_design_names_what_is_fixed():
    kw = dict(widths=[512, 256, 128], k_top=16, seeds=1, codes=4)
    assert multilayer(2, middle=(32,), k_ratio=0.25, **kw).design == "k1/k0 = 0.25 fixed"
    assert multilayer(2, middle=(32,), k_bottom=200, **kw).design == "k0 = 200 fixed"


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
