"""Reverse-then-forward errors: the exact threshold search against brute force, the rules."""

from __future__ import annotations

import pytest
import torch

from reluscope import nets
from reluscope.errors import ConfigError, ShapeError, UnsupportedLayerError
from reluscope.shadow import best_threshold, relative_errors, reversibility, reversibility_by_layer
from reluscope.shadow._theory import gaussian_net, sparse_codes


def _cost(u, v, theta):
    return float((torch.relu(u - theta) - v).pow(2).sum(1).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_is_the_exact_minimum(seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.relu(torch.randn(4, 30, generator=g, dtype=torch.float64))
    u = v + 0.4 * torch.randn(4, 30, generator=g, dtype=torch.float64)
    theta, cost = best_threshold(u, v)
    assert cost == pytest.approx(_cost(u, v, theta), rel=1e-9, abs=1e-12)
    grid = torch.linspace(float(u.min()) - 1, float(u.max()) + 1, 4001, dtype=torch.float64)
    brute = min(_cost(u, v, float(t)) for t in grid)
    assert cost <= brute + 1e-12
    assert brute - cost < 1e-3  # the grid gets close to the exact minimum


def test_relative_errors_per_row():
    h = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert relative_errors(h, h).tolist() == [0.0, 0.0]
    assert relative_errors(torch.zeros(2, 2), h).tolist() == [1.0, 1.0]


def test_rules_on_a_gaussian_layer():
    g = torch.Generator().manual_seed(0)
    net = gaussian_net([1024, 512], g)
    h = sparse_codes(32, 512, 16, g)
    r = reversibility(net, h, layer=0, rho=0.5, alpha="paper", generator=1)
    assert r.errors["best"] < r.errors["none"] and r.errors["best"] <= r.errors["theory"] + 1e-12
    assert r.errors["net"] == pytest.approx(r.errors["none"])  # bias-free layer
    assert r.t == 512 and r.k == 16 and r.codes == 32 and r.m == 512
    assert r.to_dict()["errors"].keys() == {"none", "theory", "best", "net"}
    # more kept inputs (larger t), smaller error with the best threshold
    r2 = reversibility(net, h, layer=0, rho=1.0, alpha="paper", generator=1)
    assert r2.errors["best"] < r.errors["best"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reversibility_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    net = gaussian_net([512, 256], g)
    h = sparse_codes(16, 256, 16, g)
    cpu = reversibility(net, h, layer=0, rho=0.5, alpha="paper", generator=torch.Generator().manual_seed(1))
    gpu = reversibility(net.copy(device="cuda"), h.cuda(), layer=0, rho=0.5, alpha="paper",
                        generator=torch.Generator().manual_seed(1))  # CPU draws: same noise on both
    assert gpu.theta == pytest.approx(cpu.theta, rel=1e-4)
    assert gpu.errors == pytest.approx(cpu.errors, rel=1e-4)


def test_by_layer_on_an_mlp_and_errors():
    torch.manual_seed(0)
    net = nets.load(nets.mlp([64, 48, 32, 10]), input_shape=(1, 8, 8))
    res = reversibility_by_layer(net, torch.rand(16, 1, 8, 8), rho=0.5, generator=0)
    assert [r.layer for r in res] == [0, 1]
    assert all(r.errors["best"] <= r.errors["none"] for r in res)
    with pytest.raises(UnsupportedLayerError, match="ReLU"):
        reversibility(net, torch.rand(2, 10), layer=2)
    with pytest.raises(ShapeError, match="negative"):
        reversibility(net, -torch.rand(2, 48), layer=0)
    with pytest.raises(ShapeError, match="zero"):
        reversibility(net, torch.zeros(2, 48), layer=0)
    with pytest.raises(ConfigError):
        reversibility(net, torch.rand(2, 48), layer=7)
