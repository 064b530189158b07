"""Effect sizes of random-likeness, each against a closed form or a brute-force construction."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.spectrum import analyze, analyze_matrix, entry_stats
from reluscope.spectrum._effects import (
    default_init_bound,
    entries_vs_initial,
    entries_vs_uniform,
    excess_kurtosis_ci,
    outlier_energy,
    porter_thomas,
    shuffled_baseline,
)
from reluscope.spectrum.report import _claims


def _spiked(n=800, p=200, theta=3.0, seed=1):
    """`G / sqrt(n) + theta u v^T`; BBP: the top s^2 -> (1 + theta^2)(c + theta^2) / theta^2, c = p/n."""
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal(n), rng.standard_normal(p)
    return rng.standard_normal((n, p)) / math.sqrt(n) + theta * np.outer(u / np.linalg.norm(u),
                                                                           v / np.linalg.norm(v))


def test_gaussian_matrix_is_all_bulk():
    w = np.random.default_rng(0).standard_normal((600, 200))
    e = analyze_matrix(w).effects
    assert e.bulk_fraction == 1.0 and e.outlier_energy == 0.0
    assert e.shuffled.n_outliers == 0 and e.shuffled.learned_outliers == 0
    assert not e.porter_thomas_top.rejected and not e.porter_thomas_bulk.rejected
    assert e.porter_thomas_top.n_vectors == 20 and e.porter_thomas_top.n_components == 10 * (600 + 200)
    assert e.ks_bulk_over_noise <= 1.0


def test_planted_spike_energy_matches_bbp_and_vanishes_on_shuffling():
    n, p, theta = 800, 200, 3.0
    w = _spiked(n, p, theta)
    ls = analyze_matrix(w)
    e = ls.effects
    assert ls.mp.n_outliers == 1
    assert e.bulk_fraction == pytest.approx(1 - 1 / p)
    c = p / n
    s1_sq = (1 + theta**2) * (c + theta**2) / theta**2
    assert e.outlier_energy == pytest.approx(s1_sq / np.sum(w**2), rel=0.03)
    assert e.shuffled.n_outliers == 0 and e.shuffled.learned_outliers == 1
    assert not e.porter_thomas_bulk.rejected  # (the planted u, v are random directions: top passes too)


def test_outlier_energy_brute_force():
    s = np.array([4.0, 2.0, 1.0, 1.0])
    assert outlier_energy(s, 2) == pytest.approx((16 + 4) / 22)
    assert outlier_energy(s, 0) == 0.0


def test_nonzero_mean_spike_survives_shuffling():
    """A mean mu adds mu 1 1^T (singular value mu sqrt(NM)): a spike of the entry law, not learned."""
    rng = np.random.default_rng(2)
    n, p, mu = 600, 200, 0.2
    w = rng.standard_normal((n, p)) + mu
    base = shuffled_baseline(w, n_outliers=1, seed=0)
    assert base.n_outliers == 1 and base.learned_outliers == 0
    theta, c = mu * math.sqrt(p), p / n  # the spike of W / sqrt(n), and the BBP top s^2 of W
    top_sq = n * (1 + theta**2) * (c + theta**2) / theta**2
    assert base.outlier_energy == pytest.approx(top_sq / np.sum(w**2), rel=0.05)
    # its singular vectors are constant: Porter–Thomas rejects them
    u, _, vt = np.linalg.svd(w, full_matrices=False)
    assert porter_thomas(u[:, :1], vt[:1].T).rejected


def test_porter_thomas_rejects_sparse_vectors_and_accepts_haar():
    rng = np.random.default_rng(3)
    haar = np.linalg.qr(rng.standard_normal((400, 20)))[0]
    assert not porter_thomas(haar).rejected
    sparse = np.zeros((400, 5))
    sparse[rng.integers(0, 400, 5 * 20).reshape(5, 20).T, np.arange(5)] = 1.0
    assert porter_thomas(sparse).rejected


def test_kurtosis_of_uniform_and_gaussian_with_intervals():
    rng = np.random.default_rng(4)
    n = 50_000
    uni = excess_kurtosis_ci(rng.uniform(-1, 1, n), seed=0)
    assert uni.estimate == pytest.approx(-1.2, abs=0.03) and uni.low < -1.2 < uni.high
    gauss = excess_kurtosis_ci(rng.standard_normal(n), seed=0)
    assert abs(gauss.estimate) < 0.1 and gauss.low < 0 < gauss.high
    # width against the closed-form standard error sqrt(24 / n) of a Gaussian's excess kurtosis
    assert gauss.high - gauss.low == pytest.approx(2 * 1.96 * math.sqrt(24 / n), rel=0.3)


def test_kurtosis_ci_is_seeded():
    x = np.random.default_rng(6).standard_normal(5000)
    assert excess_kurtosis_ci(x, seed=1) == excess_kurtosis_ci(x, seed=1)


def test_default_init_layer_matches_its_law_not_a_gaussian():
    torch.manual_seed(0)
    w = nn.Linear(784, 256).weight.detach().double().numpy()
    assert default_init_bound(784) == pytest.approx(1 / 28)
    assert entries_vs_uniform(w, default_init_bound(784)).same
    stats = entry_stats(w)
    assert stats.ks > stats.ks_critical and not stats.gaussian  # fails Gaussian KS at 1%
    torch.manual_seed(1)
    w2 = nn.Linear(784, 256).weight.detach().double().numpy()
    assert entries_vs_initial(w, w2).same
    assert not entries_vs_initial(w, 1.5 * w2).same


def test_gaussian_init_and_alexnet():
    model = nets.gaussian_init(nets.alexnet_cifar(), seed=0)
    assert [type(m).__name__ for m in model if not isinstance(m, (nn.ReLU, nn.MaxPool2d))][:3] == \
        ["Conv2d", "Conv2d", "Flatten"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    w = model[0].weight.detach().double().numpy()
    assert w.std() == pytest.approx(1 / math.sqrt(3 * 75), rel=0.05)  # PyTorch's default scale
    big = model[-5].weight.detach().double().numpy()  # dense 4096 -> 384
    assert big.shape == (384, 4096) and abs(entry_stats(big).excess_kurtosis) < 0.05
    assert torch.equal(nets.gaussian_init(nets.alexnet_cifar(), seed=0)[0].weight, model[0].weight)


def test_analysis_frame_and_claims_name_the_deciding_measure():
    torch.manual_seed(0)
    model = nets.mlp([200, 400, 10])
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(_spiked(400, 200, 3.0), dtype=torch.float32))
    res = analyze(model, init_model=True)
    frame = res.to_frame()
    for col in ("bulk_fraction", "outlier_energy", "shuffled_spikes", "pt_bulk_p", "ks_initial",
                "init_bulk_fraction", "kurtosis_low"):
        assert col in frame.columns
    assert res.layers[0].effects.vs_initial is not None
    claims = _claims(res)
    bulk, whole = claims[0], claims[1]
    assert "bulk is random-like" in bulk.claim and bulk.holds
    assert "whole matrix is Gaussian" in whole.claim and whole.holds is False
    assert "decided by layer 1: 1 outlier(s) above the MP edge" in whole.measured
    assert "0 survive shuffling" in whole.measured
