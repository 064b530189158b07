"""The shadow sampler against closed-form statistics, adjoints and manual computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import ConfigError, ShapeError, UnsupportedLayerError
from reluscope.shadow import keep_mask, layer_alpha, sample, sample_chain, transpose
from reluscope.shadow._sampler import bernoulli_keep
from reluscope.shadow._theory import gaussian_net


def _gauss(n, m, seed=0, dtype=torch.float64):
    return gaussian_net([n, m], torch.Generator().manual_seed(seed), dtype=dtype)


def test_fraction_of_nonzeros_is_rho_times_fraction_positive():
    n, m, rho, batch = 3000, 50, 0.3, 40
    net = _gauss(n, m)
    h = torch.rand(batch, m, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = sample(net, h, layer=0, rho=rho, alpha="paper", generator=2)
    w = net[0].weight.detach()
    positive = (h @ w > 0).double().mean(1)  # fraction where αWᵀh > 0 (α > 0)
    nonzero = (x != 0).double().mean(1)
    # binomial sampling error of n coordinates per code, 5 sigma
    sigma = torch.sqrt(rho * positive * (1 - rho * positive) / n)
    assert ((nonzero - rho * positive).abs() <= 5 * sigma + 1e-12).all()
    # Gaussian W: half the pre-activations are positive, so about rho/2 survive overall
    assert abs(float(nonzero.mean()) - rho / 2) < 0.02


def test_alpha_scaling_paper_scaled_and_number():
    n, m = 400, 30
    net = _gauss(n, m)
    w = net[0].weight.detach()
    h = torch.rand(5, m, dtype=torch.float64)
    for rho in (0.25, 1.0):
        assert layer_alpha(net[0], rho, "paper") == pytest.approx(2 / (rho * n))
    # rho = 1: no noise, so the sample is exactly r(α W_torchᵀ h)
    x = sample(net, h, layer=0, rho=1.0, alpha="paper")
    torch.testing.assert_close(x, torch.relu(2 / n * h @ w))
    x3 = sample(net, h, layer=0, rho=1.0, alpha=3.0)
    torch.testing.assert_close(x3, torch.relu(3.0 * h @ w))
    xs = sample(net, h, layer=0, rho=1.0, alpha="scaled")
    power = float(w.pow(2).sum(1).mean())  # mean squared row norm = fan_in · σ²
    torch.testing.assert_close(xs, x * (n / power))
    # "scaled" is invariant to the weight scale: 10x weights give the same code-space recovery
    net[0].module.weight.data.mul_(10)
    xs10 = sample(net, h, layer=0, rho=1.0, alpha="scaled")
    torch.testing.assert_close(xs10 * 10, xs)


def test_forward_of_sample_recovers_h_in_expectation():
    n, m, rho, draws = 8000, 12, 0.5, 400
    net = _gauss(n, m, seed=3)
    w = net[0].weight.detach()
    h = torch.zeros(1, m, dtype=torch.float64)
    h[0, :4] = torch.tensor([1.0, 0.5, 1.5, 0.8])
    x = sample(net, h.expand(draws, m).contiguous(), layer=0, rho=rho, alpha="paper", generator=4)
    z = x @ w.T  # W_torch x~, one row per draw
    # (1) over the dropout noise, the mean is exactly rho · W r(α Wᵀh): sampling error only
    expect = rho * torch.relu(2 / (rho * n) * h @ w) @ w.T
    se = z.std(0) / math.sqrt(draws)
    assert ((z.mean(0) - expect[0]).abs() <= 5 * se).all()
    # (2) over W, Stein's lemma gives E = h exactly; a fixed W deviates by ~ sqrt(2/n) ||h||
    assert ((expect[0] - h[0]).abs() <= 5 * math.sqrt(2 / n) * h.norm()).all()


def test_same_seed_same_sample_and_generator_object():
    net = _gauss(200, 20, dtype=torch.float32)
    h = torch.rand(8, 20)
    a = sample(net, h, layer=0, rho=0.5, generator=7)
    b = sample(net, h, layer=0, rho=0.5, generator=torch.Generator().manual_seed(7))
    c = sample(net, h, layer=0, rho=0.5, generator=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("rho", [0.5, 0.25, 0.75, 12345 / 2**16, 1 / 3, 0.3, 0.9, 0.01])
def test_bernoulli_keep_matches_the_binomial_law(rho):
    # the 8-bit (multiples of 1/256), 16-bit (of 2^-16) and 32-bit paths: the kept fraction, and
    # neighbours (drawn from one 64-bit word) kept together with probability rho², within 5 sigma
    n = 400_000
    keep = bernoulli_keep((400, 1000), rho, generator=torch.Generator().manual_seed(3)).reshape(-1)
    assert keep.dtype == torch.bool and keep.numel() == n
    frac = float(keep.double().mean())
    assert abs(frac - rho) <= 5 * math.sqrt(rho * (1 - rho) / n)
    pair = keep[0::2] & keep[1::2]
    q = rho * rho
    assert abs(float(pair.double().mean()) - q) <= 5 * math.sqrt(q * (1 - q) / (n // 2))


def test_bernoulli_keep_edges_and_seed():
    gen = torch.Generator().manual_seed(0)
    assert bernoulli_keep((3, 7), 1.0, generator=gen).all()
    assert not bernoulli_keep((3, 7), 0.0, generator=gen).any()
    a = bernoulli_keep((5, 13), 0.3, generator=torch.Generator().manual_seed(9))
    b = bernoulli_keep((5, 13), 0.3, generator=torch.Generator().manual_seed(9))
    assert a.shape == (5, 13) and torch.equal(a, b)
    with pytest.raises(ConfigError, match="rho"):
        bernoulli_keep((2, 2), 1.5)


def test_exact_k_keeps_exactly_k():
    mask = keep_mask((6, 100), 0.37, exact_k=True, generator=torch.Generator().manual_seed(0))
    assert (mask.sum(1) == 37).all()
    net = gaussian_net([100, 10], torch.Generator().manual_seed(0), dtype=torch.float64)
    net[0].module.weight.data.abs_()  # all pre-activations positive: only the noise zeroes
    x = sample(net, torch.rand(6, 10, dtype=torch.float64) + 0.1, layer=0, rho=0.2, exact_k=True,
               generator=1)
    assert ((x != 0).sum(1) == 20).all()


def test_multilayer_chain_matches_eq4_by_hand():
    widths = [50, 40, 30]
    net = gaussian_net(widths, torch.Generator().manual_seed(0), dtype=torch.float64)
    h = torch.rand(3, 30, dtype=torch.float64)
    levels = sample_chain(net, h, layer=1, rho=1.0, alpha="paper")
    w0, w1 = net[0].weight.detach(), net[1].weight.detach()
    h1 = torch.relu(2 / 40 * h @ w1)  # α_1 = 2/k_1 with k_1 = rho · n_1
    x = torch.relu(2 / 50 * h1 @ w0)
    assert [tuple(v.shape) for v in levels] == [(3, 30), (3, 40), (3, 50)]
    torch.testing.assert_close(levels[1], h1)
    torch.testing.assert_close(levels[2], x)
    # per-layer rho: the kept fraction follows each layer's rho
    big = gaussian_net([4000, 3000, 100], torch.Generator().manual_seed(1), dtype=torch.float32)
    lv = sample_chain(big, torch.rand(20, 100), layer=-1, rho=[0.8, 0.2], generator=0)
    assert abs(float((lv[1] != 0).float().mean()) - 0.4) < 0.03
    assert abs(float((lv[2] != 0).float().mean()) - 0.1) < 0.03


def _cnn_net():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=1, padding=1), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
        nn.AvgPool2d(2),
        nets.LocallyConnected2d(6, 3, (2, 2), kernel_size=2, stride=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    return nets.load(model.double(), input_shape=(1, 8, 8))


def test_transpose_is_the_adjoint_of_every_layer_kind():
    net = _cnn_net()
    kinds = set()
    for layer in net:
        kinds.add(layer.kind)
        x = torch.randn(2, *layer.in_shape, dtype=torch.float64)
        h = torch.randn(2, *layer.out_shape, dtype=torch.float64)
        lhs = (layer.affine(x, bias=False).detach() * h).sum()
        rhs = (x * transpose(layer, h)).sum()
        assert float(lhs) == pytest.approx(float(rhs), rel=1e-10, abs=1e-10), layer.kind
    assert kinds == {"conv2d", "avgpool2d", "locally_connected", "linear"}


def test_cnn_round_trip_shapes_and_consistency():
    net = nets.load(nets.cifar_cnn(1, 8, 10), input_shape=(1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    for i in net.relu_layers():
        h = net.forward(x, upto=i)
        levels = sample_chain(net, h, layer=i, rho=0.5, generator=0)
        assert levels[-1].shape == x.shape and (levels[-1] >= 0).all()
        for j, lev in zip(range(i, -1, -1), levels):
            assert tuple(lev.shape[1:]) == net[j].out_shape or j == i
        back = net.forward(levels[-1], upto=i)  # the forward pass accepts the sample
        assert back.shape == h.shape and torch.isfinite(back).all()
    # rho = 1 on the first conv: exactly r(α conv_transpose(h))
    h = net.forward(x, upto=0)
    got = sample(net, h, layer=0, rho=1.0, alpha=0.1)
    w = net[0].weight.detach()
    torch.testing.assert_close(got, torch.relu(0.1 * torch.nn.functional.conv_transpose2d(h, w, padding=1)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_any_float_dtype(dtype):
    net = nets.load(nets.mlp([64, 32, 10]), input_shape=(64,))
    x = sample(net, torch.rand(3, 32, dtype=dtype), layer=0, rho=0.5, generator=0)
    assert x.dtype == dtype and x.shape == (3, 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_device_and_seed():
    net = nets.load(nets.cifar_cnn(1, 8, 10).cuda(), input_shape=(1, 8, 8))
    h = net.forward(torch.rand(4, 1, 8, 8, device="cuda"), upto=-2)
    a = sample(net, h, layer=-2, rho=0.5, generator=3)
    b = sample(net, h, layer=-2, rho=0.5, generator=3)
    assert a.is_cuda and torch.equal(a, b)


def test_bad_inputs_raise_one_clear_error():
    net = nets.load(nets.mlp([64, 32, 10]), input_shape=(64,))
    with pytest.raises(ShapeError, match="layer 0"):
        sample(net, torch.rand(2, 31), layer=0)
    with pytest.raises(ConfigError, match="rho"):
        sample(net, torch.rand(2, 32), layer=0, rho=1.5)
    with pytest.raises(ConfigError, match="one per layer"):
        sample(net, torch.rand(2, 10), layer=1, rho=[0.5])
    with pytest.raises(ConfigError, match="above"):
        sample(net, torch.rand(2, 32), layer=0, until=1)
    with pytest.raises(ConfigError, match="alpha"):
        sample(net, torch.rand(2, 32), layer=0, alpha="big")
    with pytest.raises(ShapeError, match="floating"):
        sample(net, torch.ones(2, 32, dtype=torch.int64), layer=0)
    assert sample(net, torch.rand(2, 32)).shape == (2, 64)  # the unique layer of that shape
    pooled = nets.load(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                       input_shape=(1, 4, 4))
    with pytest.raises(UnsupportedLayerError, match="maxpool"):
        sample(pooled, torch.rand(1, 2, 2, 2), layer=0)
