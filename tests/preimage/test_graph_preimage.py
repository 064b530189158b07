"""Pre-images of ReLU nodes of graphs: the affine system of each node against a system
written by hand from the model's modules (or autograd), and the kinds against the
coordinate-LP oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reluscope import nets
from reluscope.errors import ConfigError
from reluscope.preimage import classify_layer
from reluscope.preimage._graph import affine_region, region_system, resolve_relu_node, source_values
from reluscope.preimage._net import layer_inputs, layer_system

from .. import graph_models
from ._oracle import oracle_kind


class TwoSource(nn.Module):
    """relu(W1 relu(A x + a) + W2 x + c): a residual-style node over (h, x), 7 outputs for
    5 joint inputs, so that samples fall into every kind."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.w1 = nn.Linear(2, 7)
        self.w2 = nn.Linear(3, 7, bias=False)
        self.head = nn.Linear(7, 2)

    def forward(self, x):
        h = F.relu(self.a(x))
        return self.head(F.relu(self.w1(h) + self.w2(x)))


def _two_source():
    torch.manual_seed(0)
    model = TwoSource().double().eval()
    with torch.no_grad():
        model.w1.bias.sub_(0.3)  # 40 samples: 9 singleton, 1 compact, 30 unbounded
    return model


def test_two_source_node_matches_the_hand_written_system_and_the_lp_oracle():
    model = _two_source()
    graph = nets.load(model, input_shape=(3,))
    node = resolve_relu_node(graph, 1)
    region = affine_region(graph, node)
    assert region.sources == ("x", "relu") and region.sizes == (3, 2)
    W, b = region_system(graph, region)
    with torch.no_grad():
        W_hand = torch.cat([model.w2.weight, model.w1.weight], dim=1).numpy()  # sources in graph order
        b_hand = model.w1.bias.numpy()
    np.testing.assert_allclose(W, W_hand, rtol=0, atol=1e-14)
    np.testing.assert_allclose(b, b_hand, rtol=0, atol=1e-14)

    x = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    s = source_values(graph, region, x)
    with torch.no_grad():
        np.testing.assert_allclose(s, torch.cat([x, F.relu(model.a(x))], dim=1).numpy(), atol=1e-14)
    res = classify_layer(model, node.name, x, workers=1)
    expected = [oracle_kind(W_hand, b_hand, si) for si in s]
    assert res.batch.kinds == expected
    assert set(expected) == {"singleton", "compact", "unbounded"}  # every kind exercised
    assert res.sources == ("x", "relu") and res.label == "node 'relu#2'"
    assert "joint space R^5" in res.space and res.to_dict(samples=False)["sources"] == ["x", "relu"]


def _small_resnet():
    torch.manual_seed(0)
    model = graph_models.randomise_bn(graph_models.TinyResNet(c=2)).double().eval()
    return model, (1, 4, 4)


def test_residual_nodes_match_autograd_of_the_block_written_by_hand():
    model, shape = _small_resnet()
    graph = nets.load(model, input_shape=shape)
    blocks = {  # pre-activation of each residual ReLU as a function of its sources, from forward()
        "relu#3": (("relu", "relu#2"), lambda x, y: model.b1_bn2(model.b1_conv2(y)) + x),
        "relu#5": (("relu#3", "relu#4"),
                   lambda x, y: model.b2_bn2(model.b2_conv2(y)) + model.b2_short_bn(model.b2_short(x))),
    }
    x = torch.randn(3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for name, (sources, block) in blocks.items():
        region = affine_region(graph, graph.node(name))
        assert region.sources == sources
        W, b = region_system(graph, region)
        shapes = [graph.node(s).out_shape for s in sources]
        zeros = [torch.zeros(1, *sh, dtype=torch.float64) for sh in shapes]
        jac = torch.autograd.functional.jacobian(lambda *v, f=block: f(*v).reshape(-1), tuple(zeros))
        W_auto = torch.cat([j.reshape(j.shape[0], -1) for j in jac], dim=1).numpy()
        b_auto = block(*zeros).detach().reshape(-1).numpy()
        np.testing.assert_allclose(W, W_auto, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, b_auto, rtol=1e-12, atol=1e-12)
        s = source_values(graph, region, x)
        res = classify_layer(graph, name, x, workers=1)
        assert res.batch.kinds == [oracle_kind(W_auto, b_auto, si) for si in s]
        assert res.n == sum(np.prod(sh) for sh in shapes) > res.m  # two sources: always unbounded
        assert set(res.batch.kinds) == {"unbounded"}


def test_on_a_chain_the_node_system_is_the_layer_system():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(),
                          nn.Linear(7, 3)).double().eval()
    net = nets.load(model, input_shape=(6,))
    graph = nets.Graph(net.model, net.nodes, net.input_shape, net.aliases)  # the same nodes, as a graph
    x = torch.randn(5, 6, dtype=torch.float64)
    for k, index in enumerate(net.relu_layers()):
        region = affine_region(graph, resolve_relu_node(graph, k))
        W, b = region_system(graph, region)
        W_chain, b_chain = layer_system(net, index)
        np.testing.assert_array_equal(W, W_chain)
        np.testing.assert_array_equal(b, b_chain)
        np.testing.assert_array_equal(source_values(graph, region, x), layer_inputs(net, index, x))


def test_bad_node_is_one_clear_error():
    model, shape = graph_models.tiny_resnet()
    graph = nets.load(model, input_shape=shape)
    with pytest.raises(ConfigError, match=r"node 'add' is a add join, not a plain ReLU; .*'relu#3'"):
        classify_layer(graph, "add", torch.rand(1, *shape))
    with pytest.raises(ConfigError, match="ReLU node index 7 out of range: the model has 5 ReLU nodes"):
        classify_layer(graph, 7, torch.rand(1, *shape))
    with pytest.raises(ConfigError, match="no node named 'nope'"):
        classify_layer(graph, "nope", torch.rand(1, *shape))
