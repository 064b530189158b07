"""`analyze` covers every weight of a model whatever its topology or activations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.spectrum import analyze
from tests.graph_models import ALL


def _weight_nodes(graph) -> set[str]:
    return {n.name for n in graph.nodes if n.op == "affine" and n.layer.has_weight
            and n.layer.kind in ("linear", "conv1d", "conv2d", "locally_connected")}


def test_gelu_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 4))
    res = analyze(model, input_shape=(16,))
    assert [ls.name for ls in res.layers] == ["0", "2", "4"]
    assert [ls.shape for ls in res.layers] == [(32, 16), (32, 32), (4, 32)]


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat"])
def test_non_chain_graphs(name):
    torch.manual_seed(0)
    model, shape = ALL[name]()
    graph = nets.load(model, input_shape=shape)
    assert not graph.is_chain
    res = analyze(model, input_shape=shape, init_model=True)
    names = {ls.name for ls in res.layers}
    assert names == _weight_nodes(graph) and names
    assert len(res.init) == len(res.layers)
    assert all(ls.conv is not None for ls in res.layers if ls.kind == "conv2d")
    assert analyze(graph, conv_operator=False).table()[0]["layer"] == res.layers[0].name


def test_tiny_resnet_names():
    model, shape = ALL["tiny_resnet"]()
    res = analyze(model, input_shape=shape, conv_operator=False)
    assert {"conv", "b1_conv1", "b2_short", "fc"} <= {ls.name for ls in res.layers}
    assert all(name not in {ls.name for ls in res.layers} for name, _ in res.skipped)


class Attn(nn.Module):
    """Untraceable (data-dependent branch) and unsupported (attention): weights read directly."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.conv = nn.Conv1d(16, 16, 3, padding=1)
        self.att = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.embed(x)
        if x.sum() > 0:
            x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.head(self.att(x, x, x)[0])


def test_fallback_reads_module_weights():
    torch.manual_seed(0)
    res = analyze(Attn(), input_shape=(5, 8), init_model=True)
    names = [ls.name for ls in res.layers]
    assert names == ["embed", "conv", "att.in_proj", "att.out_proj", "head"]
    assert res.layers[2].shape == (48, 16) and res.layers[1].shape == (16, 48)
    assert len(res.init) == len(res.layers)
