"""Spectra of non-chain graphs (graph path) against autograd + NumPy's SVD, per node."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from reluscope import nets
from reluscope.errors import ConfigError, ResourceError
from reluscope.jacobian import spectra
from reluscope.jacobian._graph_spectra import estimate_graph_bytes, graph_outputs
from reluscope.jacobian._jacobians import input_chunks

from ..graph_models import ALL


def _reference(graph, x1: torch.Tensor, name: str) -> np.ndarray:
    """Singular values of d node / d input at one sample: reverse mode, then NumPy."""
    def f(v):
        return graph.run(v.unsqueeze(0), keep=[name])[name].reshape(-1)

    J = torch.autograd.functional.jacobian(f, x1)
    return np.linalg.svd(J.reshape(J.shape[0], -1).numpy(), compute_uv=False)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_node_matches_autograd_svd(name):
    model, shape = ALL[name]()
    torch.manual_seed(10)
    x = torch.randn(2, *shape)
    graph = nets.load(model, input_shape=shape)
    assert not graph.is_chain
    spec = spectra(graph, x)
    g64 = graph.copy(dtype=torch.float64)
    assert [s.output.name for s in spec] == [node.name for node in g64.nodes[1:]]
    n = math.prod(shape)
    for s in spec:
        assert s.output.stage == "out" and s.inputs == n
        assert g64.nodes[s.output.layer].name == s.output.name
        for b in range(2):
            ref = _reference(g64, x[b].double(), s.output.name)
            got = s.singular_values[b]
            assert got.shape == ref.shape
            r = int(s.rank[b])
            np.testing.assert_allclose(got[:r], ref[:r], rtol=1e-6, atol=0)
            assert np.all(got[r:] == 0)
            d = max(s.output.size, n)
            assert np.all(ref[r:] <= math.sqrt(d * np.finfo(float).eps) * ref[0] * 1.01)
            if r:
                assert s.condition[b] == pytest.approx(ref[0] / ref[r - 1], rel=1e-6)


@pytest.mark.parametrize("name", sorted(ALL))
def test_plain_module_and_last_node_is_the_model(name):
    model, shape = ALL[name]()
    torch.manual_seed(11)
    x = torch.randn(2, *shape)
    spec = spectra(model, x)
    assert spec.samples == 2 and spec.input_shape == tuple(shape) and spec.dtype == "float64"
    # the last node is the model's output: compare with the model itself, in float64
    m64 = copy.deepcopy(model).double()
    for b in range(2):
        J = torch.autograd.functional.jacobian(lambda v: m64(v.unsqueeze(0)).reshape(-1), x[b].double())
        ref = np.linalg.svd(J.reshape(J.shape[0], -1).numpy(), compute_uv=False)
        last = spec.layers[-1]
        r = int(last.rank[b])
        np.testing.assert_allclose(last.singular_values[b][:r], ref[:r], rtol=1e-6)
    assert next(model.parameters()).dtype == torch.float32  # the model is untouched


def test_node_selection_active_units_and_lookup():
    model, shape = ALL["tiny_resnet"]()
    graph = nets.load(model, input_shape=shape)
    relus = [node.name for node in graph.relu_nodes()]
    x = torch.randn(3, *shape)
    spec = spectra(graph, x, layers=relus[:2] + [1])
    assert [s.output.name for s in spec] == [graph.nodes[1].name] + relus[:2]
    assert spec[1].active is None
    values = graph.run(x)
    for s in spec.layers[1:]:
        node = graph.nodes[s.output.layer]
        expect = (values[node.inputs[0]] > 0).flatten(1).sum(1).numpy()
        np.testing.assert_array_equal(s.active, expect)
        assert spec[f"{s.output.name}:out"] is s
    with pytest.raises(ConfigError):
        graph_outputs(graph, ["input"])
    with pytest.raises(ConfigError):
        graph_outputs(graph, [])
    with pytest.raises(ConfigError):
        spectra(graph, x, layers=["no_such_node"])


def test_memory_refused_up_front_and_estimate_from_window_shapes():
    model, shape = ALL["tiny_resnet"]()
    x = torch.randn(1, *shape)
    with pytest.raises(ResourceError, match="max_bytes"):  # auto would go matrix-free instead
        spectra(model, x, max_bytes=10_000, method="exact")
    graph = nets.load(model, input_shape=shape).copy(dtype=torch.float64)
    outs = graph_outputs(graph)
    n = math.prod(shape)
    whole = estimate_graph_bytes(graph, outs, input_chunks(shape, 192), workers=2)
    tiles = estimate_graph_bytes(graph, outs, input_chunks(shape, 4), workers=2)
    assert tiles < whole  # small tiles: smaller windows in the early convolutions
    # at least the largest node's Jacobian, copied for its solve
    assert whole >= 8 * n * max(o.size for o in outs)
    full = spectra(model, x, max_bytes=whole)
    assert len(full) == len(outs)


def test_estimate_without_a_sweep_counts_only_the_reverse_rows():
    # logits alone go by reverse mode: no n x n input block is ever held
    model, shape = ALL["tiny_resnet"]()
    graph = nets.load(model, input_shape=shape).copy(dtype=torch.float64)
    outs = graph_outputs(graph, [graph.nodes[-1].name])
    n, m = math.prod(shape), outs[0].size
    assert m * 4 <= n  # few rows: reverse mode (SMALL_FRACTION)
    est = estimate_graph_bytes(graph, outs, input_chunks(shape, 192), workers=torch.get_num_threads())
    assert 8 * m * n <= est < 8 * n * n
    x = torch.randn(1, *shape)
    (s,) = spectra(model, x, layers=[outs[0].name], max_bytes=est, method="exact")
    ref = _reference(graph, x[0].double(), outs[0].name)
    r = int(s.rank[0])
    np.testing.assert_allclose(s.singular_values[0][:r], ref[:r], rtol=1e-6, atol=0)


def test_chain_path_unchanged():
    net = nets.mlp([3, 5, 2])
    s = spectra(net, torch.randn(2, 3))
    assert [o.output.stage for o in s] == ["pre", "post", "pre"]
