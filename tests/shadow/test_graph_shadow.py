"""Reconstruction, reversibility and SHADOW augmentation on graphs (residual, concat nets):
the graph path equals the chain path on a chain, one-block steps and the per-node fit match
computations by hand, plain modules and float64 models work, the report section runs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from reluscope import data, nets
from reluscope.errors import ConfigError, ShapeError, UnsupportedLayerError
from reluscope.shadow import (
    ShadowAugment,
    reconstruct,
    relative_errors,
    reversibility,
    reversibility_by_layer,
    sample,
)
from reluscope.shadow._graph_shadow import graph_sample
from tests.graph_models import ALL


def _chain(kind: str):
    torch.manual_seed(0)
    model = (nets.mlp([64, 32, 16, 10]) if kind == "mlp"
             else nets.cifar_cnn(in_channels=1, image_size=8, classes=3))
    return nets.load(model.double().eval(), input_shape=(1, 8, 8))


def _as_plain_graph(net):
    """The chain viewed as a general Graph, so every analysis takes its graph path."""
    graph = nets.Graph(net.model, net.nodes, net.input_shape, net.aliases)
    assert not graph.is_chain
    return graph


def _graph(name: str, dtype=torch.float32):
    model, shape = ALL[name]()
    return nets.load(model.to(dtype), input_shape=shape), shape


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# -- the graph path on a chain is the chain path -------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "cifar_cnn"])
@pytest.mark.parametrize("alpha", ["fit", "scaled"])
def test_graph_path_equals_chain_path_on_a_chain(kind, alpha):
    net = _chain(kind)
    graph = _as_plain_graph(net)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    layers = None if kind == "mlp" else [0, 3, 6]  # the CNN's ReLU layers are its layers 0-6
    a = reconstruct(net, x, layers=layers, alpha=alpha, generator=0)
    b = reconstruct(graph, x, layers=layers, alpha=alpha, generator=0)
    assert [la.layer for la in a.layers] == [lb.layer for lb in b.layers] == (layers or net.relu_layers())
    for la, lb in zip(a.layers, b.layers):
        assert lb.node == lb.name and lb.units == la.units
        for w in ("trained", "random"):
            for k in ("sample", "mean"):
                for m, v in la.errors[w][k].items():
                    assert _close(v, lb.errors[w][k][m]), (la.layer, w, k, m)
        torch.testing.assert_close(a.images[("trained", la.layer)], b.images[("trained", lb.layer)])
    ra = reversibility_by_layer(net, x, alpha=alpha, generator=0)
    rb = reversibility_by_layer(graph, x, alpha=alpha, generator=0)
    for p, q in zip(ra, rb):
        assert p.layer == q.layer and p.t == q.t and p.m == q.m and p.codes == q.codes
        assert all(_close(p.errors[r], q.errors[r]) for r in p.errors)


def test_fit_sample_and_augment_equal_the_chain_on_a_chain():
    net = _chain("cifar_cnn")
    graph = _as_plain_graph(net)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    i = net.relu_layers()[-1]
    node = graph.relu_nodes()[-1].name
    h = net.forward(x, upto=i)
    for exact_k in (False, True):
        want = sample(net, h, layer=i, rho=0.4, alpha="fit", exact_k=exact_k, generator=5)
        got = sample(graph, h, layer=node, rho=0.4, alpha="fit", exact_k=exact_k, generator=5)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    a, b = (ShadowAugment(n, layer="top", rho=0.5, seed=3, refit_every=2) for n in (net, graph))
    assert (a.layer, b.layer) == (i, node)
    for _ in range(3):  # fit, reuse, refit
        torch.testing.assert_close(b.synthesize(x), a.synthesize(x), rtol=1e-9, atol=1e-12)
    assert len(b._fitted) == len(a._fitted) == len(net.relu_layers())  # one α per reversed layer


# -- residual and concatenation nets --------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat", "shared_relu_block", "weighted_residual"])
def test_reconstruct_on_graphs(name):
    graph, shape = _graph(name)
    x = torch.rand(5, *shape, generator=torch.Generator().manual_seed(0))
    res = reconstruct(graph, x, rho=0.5, generator=0)
    relus = [n.name for n in graph.relu_nodes()]
    assert [lay.name for lay in res.layers] == relus
    assert [lay.layer for lay in res.layers] == list(range(len(relus)))
    for lay in res.layers:
        assert lay.label == lay.node == lay.name
        for weights in ("trained", "random"):
            for kind in ("sample", "mean"):
                errs = lay.errors[weights][kind]
                assert all(math.isfinite(v) and v >= 0 for v in errs.values())
                assert errs["input_scaled"] <= errs["input"] + 1e-9
        assert res.images[("trained", lay.layer)].shape == (5, *shape)
    d = res.to_dict()
    assert d["chain"] is False and [lay["node"] for lay in d["layers"]] == relus
    json.dumps(d)
    assert reconstruct(graph, x, rho=0.5, generator=0).to_dict() == d  # seeded
    # addressed by node name or by position among the ReLU nodes
    top = reconstruct(graph, x, layers=[relus[-1]], generator=0)
    assert [lay.name for lay in top.layers] == [relus[-1]]
    assert reconstruct(graph, x, layers=[-1], generator=0).to_dict() == top.to_dict()


def test_reconstruct_fit_keeps_the_scale_through_a_resnet():
    # the sum over a fan-out keeps the identity stream's scale: the deepest code still comes back
    torch.manual_seed(0)
    model = nets.build("resnet20", (1, 8, 8), 10).eval()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    res = reconstruct(model, x, layers=["stage3.2.relu2"], generator=0)
    errs = res.layers[0].errors["trained"]["mean"]
    assert res.layers[0].name == "stage3.2.relu2"
    assert errs["hidden"] < 1.0 and errs["input"] < 1.0 and errs["input_scaled"] < 1.0


@pytest.mark.parametrize("name", ["tiny_resnet", "dense_cat"])
@pytest.mark.parametrize("alpha", ["scaled", "fit"])
def test_reversibility_by_layer_on_graphs(name, alpha):
    graph, shape = _graph(name)
    x = torch.rand(16, *shape, generator=torch.Generator().manual_seed(0))
    res = reversibility_by_layer(graph, x, rho=0.5, alpha=alpha, generator=0)
    assert [r.name for r in res] == [n.name for n in graph.relu_nodes()]
    for r in res:
        assert all(math.isfinite(v) and v >= 0 for v in r.errors.values())
        assert r.errors["best"] <= r.errors["none"] + 1e-12 and r.errors["best"] <= 1 + 1e-12
        assert r.t > 0 and r.m == math.prod(graph.node(r.name).out_shape) and r.codes > 0
        json.dumps(r.to_dict())
    by_name = {r.name: r for r in res}
    if name == "tiny_resnet":  # relu#3 = relu(bn(conv(relu#2)) + relu): both branches, t = ρ (4·3·3 + 1)
        assert by_name["relu#3"].extra["frontier"] == ["relu", "relu#2"]
        assert by_name["relu#3"].t == 0.5 * 37
        assert by_name["relu#5"].extra["frontier"] == ["relu#3", "relu#4"]
    else:  # relu#2 = relu(c2(cat(x, relu))): 5 channels · 3 · 3 inputs per unit
        assert by_name["relu#2"].extra["frontier"] == ["x", "relu"] and by_name["relu#2"].t == 0.5 * 45


def test_one_block_step_against_autograd():
    # tiny_resnet's relu#3 block by hand from the model's modules: L(x1, x2) = bn2(conv2(x2)) + x1,
    # its transpose by autograd; α (here 2) scales the conv path only, the identity carries none
    model, shape = ALL["tiny_resnet"]()
    model = model.double()
    graph = nets.load(model, input_shape=shape)
    x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = graph.run(x, keep=["relu#3"])["relu#3"].detach()
    bias = model.b1_bn2(model.b1_conv2(torch.zeros(1, 4, 8, 8, dtype=torch.float64))).detach()

    def lin(x1, x2):
        return model.b1_bn2(model.b1_conv2(x2)) - bias + x1

    x1, x2 = (torch.zeros_like(h, requires_grad=True) for _ in range(2))
    g1, g2 = torch.autograd.grad(lin(x1, x2), (x1, x2), grad_outputs=h)
    with torch.no_grad():
        z = lin(torch.relu(g1), torch.relu(2.0 * g2))
    r = reversibility(graph, h, layer="relu#3", rho=1.0, alpha=2.0)
    assert _close(r.errors["none"], float(relative_errors(torch.relu(z), h).mean()))
    assert _close(r.errors["net"], float(relative_errors(torch.relu(z + bias), h).mean()))
    assert r.codes == 6 and r.m == 4 * 8 * 8


def test_fit_by_hand_on_a_residual_mlp():
    # weighted_residual: relu = r(x + 0.5 f(x)), relu#2 = r(relu - g(relu)); ρ = 1, alpha="fit"
    model, shape = ALL["weighted_residual"]()
    model = model.double()
    graph = nets.load(model, input_shape=shape)
    x = torch.rand(7, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = graph.run(x, keep=["relu#2"])["relu#2"].detach()
    wf, wg = model.f.weight.detach(), model.g.weight.detach()

    def scaled(w):
        return 2.0 / float(w.pow(2).sum(1).mean())

    def ls(y, t):
        return float((y * t).sum() / (y * y).sum())

    p = torch.relu(h - scaled(wg) * h @ wg)  # the sub's adjoint sends h and -h; g's transpose
    x_relu = ls(p - p @ wg.T, h) * p
    p = torch.relu(x_relu + 0.5 * scaled(wf) * x_relu @ wf)
    want = ls(p + 0.5 * p @ wf.T, x_relu) * p
    got = sample(graph, h, layer="relu#2", rho=1.0, alpha="fit")
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_fit_by_hand_on_a_concat_net_fan_out_sums():
    # dense_cat from relu#2: the input is read by relu's block and by relu#2's (through the cat)
    model, shape = ALL["dense_cat"]()
    model = model.double()
    graph = nets.load(model, input_shape=shape)
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = graph.run(x, keep=["relu#2"])["relu#2"].detach()
    w1, w2 = model.c1.weight.detach(), model.c2.weight.detach()

    def scaled(w):
        return 2.0 / float(w.pow(2).flatten(1).sum(1).mean())

    def ls(y, t):
        return float((y * t).sum() / (y * y).sum())

    d = scaled(w2) * F.conv_transpose2d(h, w2, padding=1)
    px, pr = torch.relu(d[:, :2]), torch.relu(d[:, 2:])
    a2 = ls(F.conv2d(torch.cat([px, pr], 1), w2, padding=1), h)
    x_relu = a2 * pr
    p = torch.relu(scaled(w1) * F.conv_transpose2d(x_relu, w1, padding=1))
    a1 = ls(F.conv2d(p, w1, padding=1), x_relu)
    want = a2 * px + a1 * p
    record: dict = {}
    got = graph_sample(graph, h, "relu#2", rho=1.0, alpha="fit", record=record)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert record == pytest.approx({"relu#2": a2, "relu": a1}, rel=1e-10)
    again = graph_sample(graph, h, "relu#2", rho=1.0, alpha="fit", fitted=record)  # reuse
    torch.testing.assert_close(again, want, rtol=1e-10, atol=1e-12)


# -- SHADOW augmentation --------------------------------------------------------------------------
def test_shadow_augment_trains_a_tiny_resnet():
    model, shape = ALL["tiny_resnet"]()
    model.train()
    aug = ShadowAugment(model, layer="top", rho=0.5, ratio=1.0, seed=0, input_shape=shape, refit_every=2)
    assert aug.layer == "relu#5" and repr(aug).startswith("ShadowAugment(layer='relu#5'")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(4):
        x, y = torch.rand(6, *shape, generator=gen), torch.randint(0, 3, (6,), generator=gen)
        xa, ya = aug(x, y)
        assert xa.shape == (12, *shape) and ya.shape == (12,) and torch.equal(xa[:6], x)
        assert torch.equal(ya[6:], y) and bool(torch.isfinite(xa).all()) and not xa[6:].requires_grad
        loss = F.cross_entropy(model(xa), ya)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert math.isfinite(loss.item())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert set(aug._fitted) == {n.name for n in aug.net.relu_nodes()}  # one α per ReLU node
    # by name or by ReLU index, from a spec too
    assert ShadowAugment.from_spec(model, "layer=relu#3,rho=0.3,ratio=2", input_shape=shape).layer == "relu#3"
    assert ShadowAugment(model, layer=-2, input_shape=shape).layer == "relu#4"
    first = ShadowAugment(model, layer=0, input_shape=shape).layer
    assert ShadowAugment(model, input_shape=shape).layer == first
    with pytest.raises(ConfigError, match="output"):
        ShadowAugment(model, layer="output", input_shape=shape)
    for bad in ("layer=add", "layer=nope", "layer=9"):
        with pytest.raises(ConfigError):
            ShadowAugment.from_spec(model, bad, input_shape=shape)


def test_shadow_augment_on_dense_cat_with_a_fixed_alpha():
    graph, shape = _graph("dense_cat")
    aug = ShadowAugment(graph, layer="relu", alpha="scaled", ratio=0.5, seed=1)
    x = torch.rand(4, *shape)
    xa, ya = aug(x, torch.arange(4))
    assert xa.shape == (6, *shape) and ya.tolist() == [0, 1, 2, 3, 0, 1] and bool((xa[4:] >= 0).all())


# -- plain modules, dtypes, errors ---------------------------------------------------------------
def test_every_entry_point_takes_a_plain_module():
    model, shape = ALL["tiny_resnet"]()  # conv first: the input shape comes from x or input_shape=
    x = torch.rand(4, *shape)
    h = nets.load(model, input_shape=shape).run(x, keep=["relu#3"])["relu#3"]
    assert sample(model, h, layer="relu#3", input_shape=shape, generator=0).shape == (4, *shape)
    rev = reversibility(model, h, layer="relu#3", input_shape=shape, generator=0)
    assert math.isfinite(rev.errors["best"])
    assert len(reversibility_by_layer(model, x, generator=0)) == 5
    assert len(reconstruct(model, x, layers=["relu#3"]).layers) == 1
    assert ShadowAugment(model, ratio=1, input_shape=shape)(x, torch.arange(4))[0].shape == (8, *shape)
    # an MLP module (these raised AttributeError once), with its shape inferred
    mlp = nets.mlp([64, 32, 10])
    codes = torch.rand(3, 32)
    assert sample(mlp, codes, layer=0, generator=0).shape == (3, 64)
    assert reversibility(mlp, codes, layer=0, generator=0).layer == 0
    assert len(reconstruct(mlp, torch.rand(3, 64)).layers) == 1
    assert len(reversibility_by_layer(mlp, torch.rand(3, 64))) == 1


def test_float64_model_stays_float64():
    graph, shape = _graph("tiny_resnet", torch.float64)
    x = torch.rand(4, *shape, dtype=torch.float64)
    h = graph.run(x, keep=["relu#5"])["relu#5"]
    for alpha in ("fit", "scaled"):
        assert sample(graph, h, layer="relu#5", alpha=alpha, generator=0).dtype == torch.float64
    res = reconstruct(graph.model, x.float(), layers=["relu#2"])  # data cast to the model's dtype
    assert res.images[("trained", 1)].dtype == torch.float64 and res.originals.dtype == torch.float64
    aug = ShadowAugment(graph.model, input_shape=shape)
    assert aug(x, torch.arange(4))[0].dtype == torch.float64
    assert next(graph.model.parameters()).dtype == torch.float64


def test_errors_on_graphs():
    graph, shape = _graph("tiny_resnet")
    h = torch.rand(2, 4, 8, 8)
    with pytest.raises(ConfigError, match="until"):
        sample(graph, h, layer="relu#3", until=2)
    with pytest.raises(ConfigError, match="rho"):
        sample(graph, h, layer="relu#3", rho=[0.5, 0.5])
    with pytest.raises(ConfigError, match="alpha"):
        sample(graph, h, layer="relu#3", alpha=["fit", "fit"])
    with pytest.raises(ShapeError, match="pass layer="):
        sample(graph, h)  # three ReLU nodes have this shape
    with pytest.raises(UnsupportedLayerError, match="'add'"):
        reversibility(graph, h, layer="add")
    with pytest.raises(ConfigError, match="no node named"):
        reversibility(graph, h, layer="relu#9")
    with pytest.raises(ConfigError, match="out of range"):
        reconstruct(graph, torch.rand(2, *shape), layers=[7])
    with pytest.raises(ShapeError, match="negative"):
        reversibility(graph, -h, layer="relu#3")
    with pytest.raises(ConfigError, match="zeros"):
        reconstruct(graph, torch.zeros(2, *shape))
    gelu, gshape = _graph("gelu_mlp")
    with pytest.raises(ConfigError, match="no ReLU"):
        reconstruct(gelu, torch.rand(2, *gshape))
    with pytest.raises(ConfigError, match="no ReLU"):
        ShadowAugment(gelu)


# -- the report section ---------------------------------------------------------------------------
def test_report_section_on_a_resnet(tmp_path, monkeypatch):
    from reluscope.report._registry import ReportContext
    from reluscope.shadow import _theory, report

    def tiny_theory(full=False, seed=0, exact_k=False, device="cpu"):
        t1 = _theory.theorem1(ns=(512,), ks=(16, 32), ratios=(1 / 4, 1 / 8), seeds=1, codes=8, seed=seed)
        ml = [_theory.multilayer(2, widths=[512, 256, 128], k_bottom=400, k_top=24, middle=(48, 96), seeds=1,
                                 codes=8, seed=seed)]
        return _theory.TheoryResult(t1, ml, full)

    monkeypatch.setattr(_theory, "run_theory", tiny_theory)
    ds = data.load("digits")
    model, shape = ALL["tiny_resnet"]()
    assert shape == ds.spec.shape
    net = nets.load(model, input_shape=shape)
    sec = report.build(ReportContext(model=model, net=net, data=ds, quick=True, out_dir=tmp_path))
    assert "measurements, not predictions" in sec.reading and "not a chain" in sec.reading
    assert "ReLU node" in sec.body and "relu#5" in sec.body and sec.body.count("data:image/png") == 4
    layers = sec.json["reconstruction"]["layers"]
    assert sec.json["reconstruction"]["chain"] is False
    assert [lay["node"] for lay in layers] == ["relu", "relu#2", "relu#4", "relu#5"]  # 4 of 5 nodes
    json.dumps(sec.json)
