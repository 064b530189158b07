"""The report section on a small trained MLP: table, claims, trained vs initial."""

import copy
import re

import torch

from reluscope import nets
from reluscope.data import load
from reluscope.report._registry import ReportContext
from reluscope.spectrum.report import build
from reluscope.train import TrainConfig, train


def test_section_trained_vs_initial(tmp_path):
    torch.manual_seed(0)
    model = nets.build("mlp:64", (1, 8, 8), 10)
    init = copy.deepcopy(model)
    ds = load("digits")
    train(model, ds, TrainConfig(epochs=2))
    ctx = ReportContext(model=model, net=nets.load(model, input_shape=(1, 8, 8)), data=ds,
                        init_model=init, out_dir=tmp_path, quick=True)
    sec = build(ctx)
    assert "verdict at init" in sec.body and sec.body.count("<img") >= 2
    # the entries' kurtosis with its interval, trained and at initialisation (uniform init: -1.2)
    assert "excess kurtosis [95% CI]" in sec.body and "excess kurtosis at init [95% CI]" in sec.body
    row = sec.json.table()[0]
    assert row["init_kurtosis_low"] < -1.2 < row["init_kurtosis_high"]
    assert re.search(r"-1\.\d\d \[-1\.\d\d, -1\.\d\d\]", sec.body)
    assert sec.numbers["layers analysed"] == 2 and sec.numbers["initial model"] == "given"
    assert sec.json.init is not None and len(sec.claims) >= 2
    assert any("Gaussian matrix" in c.claim for c in sec.claims)
    assert "the threshold allows 10% of the directions to be learned spikes" in sec.claims[0].claim
    decided = re.compile(r"does not hold, decided by .*layer \S+: .*\d [<>] ")
    for c in sec.claims:  # a claim that does not hold names the layer, the measure and the bound it crossed
        assert c.holds is not False or decided.search(c.measured), c.measured
