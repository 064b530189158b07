"""The ReLU parts of the stability analysis on graphs: mask product, lemma, effect of ReLU,
against autograd as an independent oracle; chains keep their outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reluscope import nets
from reluscope.errors import UnsupportedLayerError
from reluscope.jacobian import (
    check_mask_product,
    jacobians,
    lemma_check,
    lemma_checks,
    mask_product,
    spectra,
)
from reluscope.jacobian._graph_spectra import graph_spectra
from reluscope.jacobian._jacobians import single_threaded
from reluscope.jacobian._plots import decay_indices, effect_of_relu_figure, relu_pairs, summary_header

from ..graph_models import ALL

RELU_GRAPHS = ["tiny_resnet", "dense_cat", "shared_relu_block", "weighted_residual"]


_REFS: dict[tuple, dict[str, torch.Tensor]] = {}


def _autograd(graph64, x1: torch.Tensor, name: str) -> torch.Tensor:
    """d node / d input at one sample by PyTorch's autograd (forward mode, one input direction
    at a time, through the graph's own forward `graph.run`): (node size, input size). All
    nodes come from one pass per direction and are kept for the other tests."""
    key = (id(graph64.model), tuple(x1.flatten().tolist()))
    if key not in _REFS:
        names = [node.name for node in graph64.nodes[1:]]

        def f(v):
            out = graph64.run(v.unsqueeze(0))
            return tuple(out[k].reshape(-1) for k in names)

        cols = []
        with single_threaded():  # tiny ops: threads only wait for each other
            for j in range(x1.numel()):
                e = torch.zeros_like(x1).reshape(-1)
                e[j] = 1
                cols.append([t.detach() for t in torch.func.jvp(f, (x1,), (e.reshape(x1.shape),))[1]])
        _REFS[key] = {k: torch.stack([c[i] for c in cols], dim=1) for i, k in enumerate(names)}
    return _REFS[key][name]


_SETUPS: dict[tuple, tuple] = {}


def _setup(name: str, batch: int = 2, seed: int = 5):
    """(model, graph, float64 graph, inputs); the same objects for the same arguments, so
    that the reference Jacobians are computed once."""
    if (name, batch, seed) not in _SETUPS:
        model, shape = ALL[name]()
        torch.manual_seed(seed)
        x = torch.randn(batch, *shape)
        graph = nets.load(model, input_shape=shape)
        assert not graph.is_chain
        _SETUPS[(name, batch, seed)] = (model, graph, graph.copy(dtype=torch.float64), x)
    return _SETUPS[(name, batch, seed)]


@pytest.mark.parametrize("name", RELU_GRAPHS)
def test_mask_product_on_a_graph_equals_autograd(name):
    model, graph, g64, x = _setup(name)
    P = mask_product(model, x)
    assert [o.name for o in P] == [node.name for node in g64.nodes[1:]]
    assert all(o.stage == "out" for o in P)
    for o, p in P.items():
        for b in range(len(x)):
            torch.testing.assert_close(p[b], _autograd(g64, x[b].double(), o.name), rtol=1e-10, atol=1e-12)
    chk = check_mask_product(graph, x)
    assert chk.ok and chk.max_rel_error < 1e-12 and len(chk.outputs) == len(g64.nodes) - 1


def test_mask_product_on_a_graph_selected_nodes_and_refusals():
    model, graph, g64, x = _setup("tiny_resnet")
    relus = [node.name for node in graph.relu_nodes()]
    P = mask_product(graph, x, layers=relus[-1:])
    ((o, p),) = P.items()
    assert o.name == relus[-1] and o.activation == "relu" and p.shape == (2, o.size, 64)
    torch.testing.assert_close(p[1], _autograd(g64, x[1].double(), o.name), rtol=1e-10, atol=1e-12)
    gelu, shape = ALL["gelu_mlp"]()
    with pytest.raises(UnsupportedLayerError, match="jacobians"):
        mask_product(gelu, torch.randn(1, *shape))


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat"])
def test_lemma_at_relu_nodes_uses_the_nodes_input(name):
    model, graph, g64, x = _setup(name)
    checks = lemma_checks(model, x)
    relus = g64.relu_nodes()
    assert [(c.output.name, c.sample) for c in checks] == [(r.name, b) for r in relus for b in range(2)]
    spec = spectra(graph, x)
    for c in checks:
        node = g64.node(c.output.name)
        x1 = x[c.sample].double()
        A = _autograd(g64, x1, node.inputs[0])  # the pre-activation's Jacobian, by autograd
        z = g64.run(x1.unsqueeze(0), keep=[node.inputs[0]])[node.inputs[0]].reshape(-1)
        ref = lemma_check(A, z <= 0)
        got = c.check
        assert (got.rows, got.inputs, got.kept, got.candidates, got.applicable, got.rank) == (
            ref.rows, ref.inputs, ref.kept, ref.candidates, ref.applicable, ref.rank)
        for f in ("sigma_min", "c_bound", "norm_bound", "projected_bound"):
            assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-9)
        assert got.holds and got.kept == int((z > 0).sum())
        # D_I A is the ReLU node's Jacobian: its smallest nonzero singular value is sigma_min
        s = spec[f"{node.name}:out"]
        r = int(s.rank[c.sample])
        assert got.sigma_min == pytest.approx(s.singular_values[c.sample, r - 1], rel=1e-8)
        assert c.output == s.output and c.output.inputs == node.inputs


def test_lemma_node_selection_skips_other_nodes():
    model, graph, _, x = _setup("tiny_resnet", batch=1)
    relu = graph.relu_nodes()[2].name
    checks = lemma_checks(graph, x, layers=[relu, "b1_conv1", 1])
    assert [c.output.name for c in checks] == [relu]
    assert lemma_checks(graph, x, layers=["b1_conv1"]) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_graph_jacobians_equal_autograd_with_windows(name):
    model, graph, g64, x = _setup(name)
    for chunk in (5, 256):  # small chunks: spatial tiles whose windows grow through the convolutions
        J = jacobians(model, x, chunk=chunk)
        assert [o.name for o in J] == [node.name for node in g64.nodes[1:]]
        for o, j in J.items():
            for b in range(len(x)):
                ref = _autograd(g64, x[b].double(), o.name)
                torch.testing.assert_close(j[b], ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat", "shared_relu_block"])
def test_spectra_tiles_and_row_space_compression_equal_numpy(name):
    model, graph, g64, x = _setup(name)
    n = math.prod(graph.input_shape)
    plain = graph_spectra(graph, x, compress=False, chunk=4)
    for spec in (spectra(graph, x, chunk=4), spectra(graph, x, chunk=12), plain):
        for s in spec:
            for b in range(len(x)):
                ref = np.linalg.svd(_autograd(g64, x[b].double(), s.output.name).numpy(), compute_uv=False)
                r = int(s.rank[b])
                np.testing.assert_allclose(s.singular_values[b][:r], ref[:r], rtol=1e-6, atol=0)
                assert np.all(s.singular_values[b][r:] == 0)
                assert s.singular_values.shape[1] == min(s.output.size, n)
                d = max(s.output.size, n)
                assert np.all(ref[r:] <= math.sqrt(d * np.finfo(float).eps) * ref[0] * 1.01)


def test_compression_happens_and_is_reported():
    # a single block whose ReLU output has fewer active units than input dimensions
    model, graph, g64, x = _setup("weighted_residual", batch=1, seed=0)
    spec = spectra(graph, x)
    assert any("directions" in note for note in spec.notes)
    plain = graph_spectra(graph, x, compress=False)
    for a, b in zip(spec, plain):
        np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(a.rank, b.rank)


def test_effect_of_relu_on_a_graph_pairs_each_relu_with_its_input():
    model, graph, _, x = _setup("tiny_resnet")
    spec = spectra(graph, x)
    by_index = {s.output.index: s.output for s in spec}
    idx = relu_pairs(spec)
    relus = graph.relu_nodes()
    assert len(relus) == 5 and len(idx) == 4  # the 2nd and 5th ReLU nodes, with the nodes they read
    for before, after in zip(idx[::2], idx[1::2]):
        assert by_index[after].activation == "relu" and by_index[after].inputs == (by_index[before].name,)
    assert [by_index[i].name for i in idx[1::2]] == [relus[1].name, relus[4].name]
    fig = effect_of_relu_figure(spec)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == f"{by_index[idx[0]].name} (before ReLU {relus[1].name})"
    assert labels[1] == f"{relus[1].name} (after ReLU)"
    assert summary_header(spec)[1] == "node"
    assert decay_indices(spec) is not None and len(decay_indices(spec)) <= 12
    assert spec.layers[-1].output.index in decay_indices(spec)


def test_report_section_on_a_graph():
    from reluscope.data import load
    from reluscope.jacobian.report import _outputs_for, build
    from reluscope.report._registry import ReportContext

    torch.manual_seed(0)
    model = nets.resnet20(in_channels=1).eval()
    graph = nets.load(model, input_shape=(1, 8, 8))
    ctx = ReportContext(model=model, net=graph, data=load("digits"), quick=True)
    sec = build(ctx)
    assert sec.numbers["outputs analysed"] == len(graph.nodes) - 1
    assert "condition number of node fc (output)" in sec.numbers
    assert "Effect of ReLU" in sec.body and sec.body.count("<img") == 2 and "stage1.0.relu1" in sec.body
    layers = sec.json["layers"]
    by_name = {entry["output"]["name"]: entry for entry in layers}
    drops = sum(np.median(by_name[n.name]["rank"]) < np.median(by_name[n.inputs[0]]["rank"])
                for n in graph.relu_nodes())
    assert sec.numbers["ReLUs that lower the rank"] == drops
    assert by_name["stem.relu"]["output"]["inputs"] == ["stem.conv"]
    # quick mode on a CIFAR-size graph: two ReLU nodes with their inputs, and the small head
    big = nets.load(nets.resnet20().eval(), input_shape=(3, 32, 32))
    assert _outputs_for(big, quick=True) == ["stage1.0.conv1", "stage1.0.relu1", "stage1.1.add",
                                             "stage1.1.relu2", "pool", "view", "fc"]
    assert _outputs_for(big, quick=False) is None


def test_chains_are_unchanged():
    torch.manual_seed(2)
    m = nets.mlp([6, 20, 10, 3])
    x = torch.randn(2, 6)
    spec = spectra(m, x)
    assert [s.output.stage for s in spec] == ["pre", "post", "pre", "post", "pre"]
    assert all(s.output.inputs == () and "inputs" not in s.output.to_dict() for s in spec)
    assert relu_pairs(spec) == [1, 2, 3, 4] and summary_header(spec)[1] == "layer"
    assert decay_indices(spec) is None
    checks = lemma_checks(m, x)
    assert [(c.output.label, c.sample) for c in checks] == [
        ("2: 1 (post)", 0), ("2: 1 (post)", 1), ("4: 3 (post)", 0), ("4: 3 (post)", 1)]
    P = mask_product(m, x)
    assert [o.label for o in P] == [s.output.label for s in spec]
