"""The model graph: residual adds, concatenations, any activation; names as in the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import ModelError, ShapeError, UnsupportedLayerError
from tests import graph_models


@pytest.mark.parametrize("name", sorted(graph_models.ALL))
def test_graph_reproduces_the_model(name):
    model, shape = graph_models.ALL[name]()
    graph = nets.load(model, input_shape=shape)
    x = torch.randn(5, *shape)
    torch.testing.assert_close(graph(x), model(x), rtol=1e-5, atol=1e-5)
    outs = graph.run(x)
    assert set(outs) == {n.name for n in graph.nodes}
    for node in graph.nodes[1:]:  # every node's output from its inputs' outputs
        assert tuple(outs[node.name].shape[1:]) == node.out_shape
        torch.testing.assert_close(node.apply(*(outs[i] for i in node.inputs)), outs[node.name])


def test_tiny_resnet_nodes_and_folding():
    model, shape = graph_models.tiny_resnet()
    graph = nets.load(model, input_shape=shape)
    assert not graph.is_chain
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("add") == 2 and "batchnorm" not in kinds  # every BN folded into its conv
    add = graph.node("add#2")
    assert add.inputs == ("b2_conv2", "b2_short")
    assert graph.node("b2_short_bn") is graph.node("b2_short")  # a folded BN names its conv
    assert graph.node("pool").kind == "adaptive_avgpool2d"
    assert [n.name for n in graph.relu_nodes()] == ["relu", "relu#2", "relu#3", "relu#4", "relu#5"]


def test_resnet20_names_are_module_paths():
    graph = nets.load(nets.resnet20(), input_shape=(3, 32, 32))
    names = [n.name for n in graph.nodes]
    for want in ("stem.conv", "stage2.0.conv1", "stage2.0.shortcut.conv", "stage2.0.add",
                 "stage3.2.relu2", "fc"):
        assert want in names
    assert graph.node("stage2.0.add").inputs == ("stage2.0.conv2", "stage2.0.shortcut.conv")
    assert graph.node("stage1.0.add").inputs == ("stage1.0.conv2", "stem.relu")
    assert sum(p.numel() for p in nets.resnet20().parameters()) == 272474  # He et al.: 0.27M


def test_shared_relu_module_calls_are_named_apart():
    model, shape = graph_models.shared_relu_block()
    graph = nets.load(model, input_shape=shape)
    names = [n.name for n in graph.nodes]
    assert "relu" in names and "relu#2" in names
    assert graph.node("bn").kind == "batchnorm"  # after a ReLU, before a padded conv


def test_weighted_adds():
    model, shape = graph_models.weighted_residual()
    graph = nets.load(model, input_shape=shape)
    adds = [n for n in graph.nodes if n.kind == "add"]
    assert [a.params["weights"] for a in adds] == [(1.0, 1.0), (1.0, -1.0)]
    assert any(n.kind == "scale" and n.params["scale"] == 0.5 for n in graph.nodes)


def test_activations_are_kept_and_classified():
    acts = [nn.ReLU6(), nn.ELU(), nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.SiLU(), nn.Hardtanh(-2, 2)]
    model = nn.Sequential(*[m for a in acts for m in (nn.Linear(4, 4), a)]).eval()
    graph = nets.load(model)
    found = [(n.kind, n.piecewise_linear) for n in graph.nodes if n.op == "activation"]
    assert found == [("relu6", True), ("elu", False), ("tanh", False), ("sigmoid", False),
                     ("gelu", False), ("silu", False), ("hardtanh", True)]
    x = torch.randn(3, 4)
    torch.testing.assert_close(graph(x), model(x))


def test_chain_is_a_relunet_and_a_graph():
    net = nets.load(nets.mlp([4, 8, 3]))
    assert isinstance(net, nets.ReluNet) and isinstance(net, nets.Graph) and net.is_chain
    assert [n.kind for n in net.nodes] == ["input", "reshape", "linear", "relu", "linear"]
    x = torch.randn(2, 4)
    torch.testing.assert_close(net.run(x)[net.output.name], net(x))


def test_inplace_relu_does_not_overwrite_kept_values():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(inplace=True), nn.Linear(3, 2)).eval()
    graph = nets.load(model)
    outs = graph.run(torch.randn(4, 3))
    assert (outs["0"] < 0).any()  # the pre-activation keeps its negative entries


def test_untraceable_multi_input_and_lstm_get_one_line():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.fc(x)
            return x

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x, y):
            return self.fc(x) + y

    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(3, 3)

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(ModelError, match="data-dependent control flow") as e:
        nets.load(Branchy())
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="takes 2 inputs"):
        nets.load(TwoInputs())
    with pytest.raises(UnsupportedLayerError, match="LSTM"):
        nets.load(Lstm())


def test_products_of_tensors_and_batch_mixing_are_refused():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * x

    class Mix(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x).mean(0, keepdim=True)

    with pytest.raises(UnsupportedLayerError, match="multiplies tensors"):
        nets.load(Gate())
    with pytest.raises(ModelError, match="mixes the samples"):
        nets.load(Mix())


def test_unknown_node_lists_the_names():
    graph = nets.load(nets.mlp([3, 2]))
    with pytest.raises(nets.UnknownNodeError, match="nodes are: 0, 1"):
        graph.node("conv9")


def test_graph_input_shape_errors():
    model, shape = graph_models.tiny_resnet()
    with pytest.raises(ShapeError, match="input_shape"):
        nets.load(model)
    graph = nets.load(model, input_shape=shape)
    with pytest.raises(ShapeError, match=r"expects \(batch, 1, 8, 8\)"):
        graph(torch.zeros(2, 3, 8, 8))


def test_load_resnet18_is_fast():
    import time

    model = nets.resnet18().eval()
    start = time.perf_counter()
    nets.load(model, input_shape=(3, 32, 32))
    assert time.perf_counter() - start < 5.0  # ~0.3 s here; generous for CI noise


def test_chain_only_functions_name_the_node_that_makes_a_graph():
    from reluscope import shadow
    from reluscope.errors import NotAChainError

    model, shape = graph_models.tiny_resnet()
    graph = nets.load(model, input_shape=shape)
    with pytest.raises(NotAChainError, match=r"node 'add' \(add, reading b1_conv2, relu\)"):
        shadow.sample_chain(graph, torch.rand(1, 8, 4, 4))


def test_resnet_builders_from_spec():
    model = nets.build("resnet20", (3, 32, 32), 10)
    assert isinstance(model, nets.ResNet) and model.fc.out_features == 10
    with pytest.raises(Exception, match="image inputs"):
        nets.build("resnet18", (64,), 10)
