"""The report section on a small digits model: counts, figure, JSON; quick mode is quick."""

from __future__ import annotations

import copy
import time

import pytest
import torch

from reluscope import nets
from reluscope.data import load
from reluscope.preimage import KINDS
from reluscope.preimage.report import preimage_section
from reluscope.report._registry import NotApplicable, ReportContext


def _ctx(model, init=None):
    return ReportContext(model=model, net=nets.load(model, input_shape=(1, 8, 8)), data=load("digits"),
                         quick=True, init_model=init)


def test_section_counts_and_figure():
    torch.manual_seed(0)
    model = nets.mlp([64, 256, 10])
    init = copy.deepcopy(model)
    start = time.perf_counter()
    sec = preimage_section(_ctx(model, init))
    assert time.perf_counter() - start < 15
    trained = sec.json["trained"]
    assert sum(trained["counts"][k] for k in KINDS) == trained["n"] == 50
    assert sec.json["init"]["n"] == 50
    assert "<img" in sec.body and "input space R^64" in sec.body
    assert sec.numbers["singleton pre-images"] == trained["counts"]["singleton"]


def test_not_applicable_without_relu():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(NotApplicable):
        preimage_section(_ctx(model))


def test_section_on_a_residual_graph_names_the_node():
    from tests.graph_models import TinyResNet

    torch.manual_seed(0)
    model = TinyResNet(c=2, classes=10).eval()
    sec = preimage_section(_ctx(model, copy.deepcopy(model)))
    assert sec.numbers["node"] == "relu, 128 x 64"  # the stem's ReLU: 2 x 8 x 8 outputs of the 64 inputs
    assert "Positive outputs of node &#x27;relu&#x27;" in sec.body and "input space R^64" in sec.body
    assert sec.json["trained"]["sources"] == ["x"] and sec.json["init"]["n"] == 50
