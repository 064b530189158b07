"""Reconstruction of real images per layer, trained vs random weights."""

from __future__ import annotations

import pytest
import torch

from reluscope import data, nets
from reluscope.errors import ConfigError
from reluscope.shadow import random_like, reconstruct, sample


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_random_like_keeps_shapes_and_scale():
    torch.manual_seed(0)
    net = nets.load(nets.mlp([64, 48, 10]), input_shape=(64,))
    net[0].module.weight.data.mul_(3)
    rnet = random_like(net, torch.Generator().manual_seed(0))
    for a, b in zip(net, rnet):
        assert a.weight.shape == b.weight.shape and not torch.equal(a.weight, b.weight)
        ra, rb = (lay.weight.detach().pow(2).mean().sqrt() for lay in (a, b))
        assert float(rb / ra) == pytest.approx(1.0, abs=0.1)
    assert torch.equal(net[0].module.weight, net.model[1].weight)  # the original is untouched


def test_fit_alpha_is_the_least_squares_scale():
    torch.manual_seed(0)
    net = nets.load(nets.mlp([64, 48, 10]), input_shape=(64,))
    h = net.forward(torch.rand(16, 64), upto=0)
    w = net[0].weight.detach()

    def cost(x):
        return float((x @ w.T - h).pow(2).sum())

    fit = sample(net, h, layer=0, rho=1.0, alpha="fit")
    base = sample(net, h, layer=0, rho=1.0, alpha=1.0)
    best = min(cost(base * c) for c in torch.linspace(0.01, 3, 200).tolist())
    assert cost(fit) <= best + 1e-6


@pytest.mark.parametrize("arch", ["mlp:48-32", "cifar_cnn"])
def test_reconstruct_digits_mlp_and_cnn(digits, arch):
    torch.manual_seed(0)
    model = nets.build(arch, digits.spec.shape, digits.spec.classes)
    net = nets.load(model, input_shape=digits.spec.shape)
    layers = net.relu_layers()[::3]  # first, middle and top hidden layers of the CNN
    res = reconstruct(net, digits.test.x[:8], layers=layers, rho=0.5, generator=0)
    assert [lay.layer for lay in res.layers] == layers
    for lay in res.layers:
        for weights in ("trained", "random"):
            for kind in ("sample", "mean"):
                errs = lay.errors[weights][kind]
                assert set(errs) == {"input", "input_scaled", "hidden"}
                assert all(v >= 0 and v == v for v in errs.values())
                assert errs["input_scaled"] <= errs["input"] + 1e-9  # best scale beats the given one
        assert res.images[("trained", lay.layer)].shape == (8, *digits.spec.shape)
    again = reconstruct(net, digits.test.x[:8], layers=layers, rho=0.5, generator=0)
    assert again.to_dict() == res.to_dict()  # seeded
    with pytest.raises(ConfigError, match="zeros"):
        reconstruct(net, torch.zeros(2, *digits.spec.shape))


def test_reconstruct_mnist_runs(mnist_dir):
    ds = data.load(mnist_dir)
    torch.manual_seed(0)
    net = nets.load(nets.build("mlp:128-64", ds.spec.shape, ds.spec.classes), input_shape=ds.spec.shape)
    res = reconstruct(net, ds.test.x[:8], generator=0)
    assert len(res.layers) == 2 and res.to_dict()["images"] == 8
