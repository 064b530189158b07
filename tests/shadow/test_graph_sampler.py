"""The graph shadow sampler: equal to the chain sampler on chains, an exact transpose on
residual/concat graphs, and a clear error on non-ReLU graphs."""

from __future__ import annotations

import doctest

import pytest
import torch

from reluscope import nets
from reluscope.errors import ConfigError, ShapeError, UnsupportedLayerError
from reluscope.shadow import _graph_sampler, sample, sample_chain, sample_graph, transpose_graph
from tests.graph_models import ALL


def _chain(kind: str, dtype=torch.float64):
    torch.manual_seed(0)
    if kind == "mlp":
        model, shape = nets.mlp([64, 32, 16, 10]), (1, 8, 8)
    else:
        model, shape = nets.cifar_cnn(in_channels=1, image_size=8, classes=3), (1, 8, 8)
    return nets.load(model.to(dtype).eval(), input_shape=shape)


def _relu_node_of(net, layer_index: int) -> str:
    """The ReLU node applied to layer `layer_index`'s output (the chain's code site)."""
    name = net.layers[layer_index].name
    return next(n.name for n in net.nodes if n.is_relu and n.inputs == (name,))


CASES = [(kind, rho, alpha) for kind in ("mlp", "cifar_cnn") for rho in (1.0, 0.3)
         for alpha in ("scaled", "paper", 2.5)] + [("mlp", 0.5, "scaled")]


@pytest.mark.parametrize(("kind", "rho", "alpha"), CASES)
def test_equals_chain_sampler(kind, rho, alpha):
    net = _chain(kind)
    relus = [k for k, lay in enumerate(net.layers) if lay.activation == "relu"]
    for i in relus if kind == "mlp" else [relus[2], relus[-1]]:
        node = _relu_node_of(net, i)
        out_shape = net.layers[i].out_shape
        h = torch.rand(4, *out_shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        want = sample(net, h, layer=i, rho=rho, alpha=alpha, generator=7)
        got = sample_graph(net, h, node=node, rho=rho, alpha=alpha, generator=7)
        assert got.shape == (4, *net.input_shape)
        torch.testing.assert_close(got, want.reshape(got.shape), rtol=1e-10, atol=1e-12)


def test_equals_chain_sampler_exact_k_and_generator_object():
    net = _chain("cifar_cnn")
    i = 3
    h = torch.rand(3, *net.layers[i].out_shape, dtype=torch.float64)
    want = sample_chain(net, h, layer=i, rho=0.4, exact_k=True, generator=torch.Generator().manual_seed(5))
    got = sample_graph(net, h, node=_relu_node_of(net, i), rho=0.4, exact_k=True,
                       generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, want[-1].reshape(got.shape), rtol=1e-10, atol=1e-12)


def test_chain_float32_and_flat_codes():
    net = _chain("mlp", torch.float32)
    h = torch.rand(6, 16)
    want = sample(net, h, layer=1, rho=0.5, generator=1)
    got = sample_graph(net, h, node=_relu_node_of(net, 1), rho=0.5, generator=1)
    torch.testing.assert_close(got, want.reshape(got.shape))


def _linear_part_vjp(graph, g: torch.Tensor, node: str) -> torch.Tensor:
    """Oracle: autograd through the graph with activations as identity and no biases."""
    x = torch.randn(g.shape[0], *graph.input_shape, dtype=g.dtype, requires_grad=True)
    env = {graph.input.name: x}
    for n in graph.nodes[1:]:
        xs = [env[k] for k in n.inputs]
        env[n.name] = xs[0] if n.op == "activation" else n.apply(*xs, bias=False)
        if n.name == node:
            break
    (grad,) = torch.autograd.grad(env[node], x, grad_outputs=g)
    return grad


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat", "weighted_residual"])
def test_transpose_graph_is_the_vjp_of_the_linear_part(name):
    model, shape = ALL[name]()
    graph = nets.load(model.double(), input_shape=shape)
    assert not graph.is_chain
    for relu in graph.relu_nodes():
        g = torch.randn(3, *relu.out_shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        got = transpose_graph(graph, g, relu.name)
        want = _linear_part_vjp(graph, g, relu.name)
        assert got.shape == (3, *shape)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat", "weighted_residual"])
def test_sample_graph_on_residual_and_concat_nets(name):
    model, shape = ALL[name]()
    graph = nets.load(model, input_shape=shape)
    top = graph.relu_nodes()[-1]
    h = torch.rand(5, *top.out_shape)
    x = sample_graph(graph, h, node=top.name, rho=0.5, generator=3)
    assert x.shape == (5, *shape) and bool((x >= 0).all()) and bool(torch.isfinite(x).all())
    again = sample_graph(graph, h, node=top.name, rho=0.5, generator=3)
    torch.testing.assert_close(x, again)
    # rho = 1 is deterministic and, with alpha a number, positively homogeneous in h
    x1 = sample_graph(graph, h, node=top.name, rho=1.0, alpha=1.0)
    torch.testing.assert_close(sample_graph(graph, 2 * h, node=top.name, rho=1.0, alpha=1.0), 2 * x1)


def test_sample_graph_residual_copy_by_hand():
    # weighted_residual, from the first ReLU: relu <- add(x, 0.5 f(x)), so x~ = r(h + 0.5 α_f W_fᵀ h)
    model, shape = ALL["weighted_residual"]()
    graph = nets.load(model.double(), input_shape=shape)
    h = torch.rand(4, 6, dtype=torch.float64)
    w = model.f.weight.detach()
    x = sample_graph(graph, h, node="relu", rho=1.0, alpha=3.0)
    torch.testing.assert_close(x, torch.relu(h + 0.5 * 3.0 * h @ w))


def test_gelu_graph_raises_a_clear_error():
    model, shape = ALL["gelu_mlp"]()
    graph = nets.load(model, input_shape=shape)
    h = torch.rand(2, 3)
    with pytest.raises(UnsupportedLayerError, match="'2'.*gelu"):
        sample_graph(graph, h, node="5", rho=0.5)
    with pytest.raises(UnsupportedLayerError, match="gelu"):
        transpose_graph(graph, h, "5")
    # a node below the GELU is fine
    x = sample_graph(graph, torch.rand(2, 16), node="1", rho=1.0)
    assert x.shape == (2, 10)


def test_bad_arguments():
    model, shape = ALL["tiny_resnet"]()
    graph = nets.load(model, input_shape=shape)
    with pytest.raises(ShapeError):
        sample_graph(graph, torch.rand(2, 5), node="relu#5")
    with pytest.raises(ConfigError):
        sample_graph(graph, torch.rand(2, 8, 4, 4), node="relu#5", rho=0.0)
    with pytest.raises(ConfigError):
        sample_graph(graph, torch.rand(2, 8, 4, 4), node="relu#5", alpha=[1.0, 2.0])
    with pytest.raises(ConfigError):
        sample_graph(graph, torch.rand(2, 8, 4, 4), node="no_such_node")


def test_fit_is_the_per_node_fit_of_sample():
    model, shape = ALL["tiny_resnet"]()
    graph = nets.load(model, input_shape=shape)
    h = torch.rand(3, 8, 4, 4)
    got = sample_graph(graph, h, node="relu#5", rho=0.5, alpha="fit", generator=2)
    torch.testing.assert_close(got, sample(graph, h, layer="relu#5", rho=0.5, alpha="fit", generator=2))
    assert got.shape == (3, *shape) and bool(torch.isfinite(got).all())


def test_doctest():
    result = doctest.testmod(_graph_sampler, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
