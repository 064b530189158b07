"""Every public entry point that takes a model accepts the user's plain `nn.Module` (a chain
and a residual net), computes on the model's own dtype, and leaves the module untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reluscope import jacobian, nets, preimage, shadow, spectrum
from reluscope.report import build_report
from reluscope.report._run import prepare_context

from .graph_models import TinyResNet, randomise_bn


def _chain():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                         nn.Linear(24, 10)).double().eval()


def _resnet():
    torch.manual_seed(0)
    return randomise_bn(TinyResNet(c=2, classes=10)).double().eval()


MODELS = {"chain": _chain, "resnet": _resnet}
SHAPE = (1, 8, 8)


def _x(n=3):
    return torch.randn(n, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _relu(model) -> str | int:
    graph = nets.load(model, input_shape=SHAPE)
    return 0 if graph.is_chain else graph.relu_nodes()[-1].name


def _code(model, x):
    """Codes at the ReLU that `_relu` names, for the samplers."""
    graph = nets.load(model, input_shape=SHAPE)
    if graph.is_chain:
        return graph.trace(x).post[0]
    return graph.run(x, keep=[_relu(model)])[_relu(model)]


CALLS = {
    "nets.load": lambda m, x: nets.load(m, input_shape=SHAPE),
    "nets.as_graph": lambda m, x: nets.as_graph(m, SHAPE),
    "spectrum.analyze": lambda m, x: spectrum.analyze(m, input_shape=SHAPE),
    "jacobian.spectra": lambda m, x: jacobian.spectra(m, x[:1]),
    "jacobian.jacobians": lambda m, x: jacobian.jacobians(m, x[:1]),
    "jacobian.lemma_checks": lambda m, x: jacobian.lemma_checks(m, x[:1], candidates=16),
    "jacobian.mask_product": lambda m, x: jacobian.mask_product(m, x[:1]),
    "jacobian.check_mask_product": lambda m, x: jacobian.check_mask_product(m, x[:1]),
    "preimage.classify_layer": lambda m, x: preimage.classify_layer(m, 0, x[:2], workers=1),
    "shadow.sample": lambda m, x: shadow.sample(m, _code(m, x), layer=_relu(m), generator=0,
                                                input_shape=SHAPE),
    "shadow.reversibility": lambda m, x: shadow.reversibility(m, _code(m, x), layer=_relu(m), generator=0,
                                                              input_shape=SHAPE),
    "shadow.reversibility_by_layer": lambda m, x: shadow.reversibility_by_layer(m, x, generator=0),
    "shadow.reconstruct": lambda m, x: shadow.reconstruct(m, x),
    "shadow.random_like": lambda m, x: shadow.random_like(m, torch.Generator().manual_seed(0), SHAPE)(x),
    "shadow.ShadowAugment": lambda m, x: shadow.ShadowAugment(m, input_shape=SHAPE)(x, torch.zeros(3).long()),
}


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("entry", list(CALLS))
def test_entry_point_takes_a_plain_module(entry, kind):
    model = MODELS[kind]()
    before = copy.deepcopy(model.state_dict())
    out = CALLS[entry](model, _x())
    assert out is not None
    for t in _tensors(out):
        if t.is_floating_point():
            assert t.dtype == torch.float64, f"{entry} computed in {t.dtype}, not the model's float64"
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{entry} changed the model"
    assert not model.training


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)


def test_report_takes_a_plain_module(tmp_path):
    ctx = prepare_context(_resnet().float(), data="digits", out_dir=tmp_path, quick=True)
    path, outcomes = build_report(ctx, only=["spectrum", "shadow"])
    assert path.exists() and {o.status for o in outcomes} == {"ok"}
