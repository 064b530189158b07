"""The `reluscope jacobian` command and the report section, end to end on small models."""

from __future__ import annotations

import json

import pytest
import torch

from reluscope import nets
from reluscope.cli import main
from reluscope.report._registry import NotApplicable, ReportContext


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("jac") / "m.pt"
    torch.manual_seed(0)
    model = nets.mlp([64, 24, 16, 10])
    nets.save_checkpoint(path, model, "mlp:64-24-16-10", (1, 8, 8), 10, 0.0)
    return path


def test_cli_writes_json_and_figures(capsys, tmp_path, checkpoint):
    js, figs = tmp_path / "j.json", tmp_path / "figs"
    code = main(["jacobian", str(checkpoint), "--data", "digits", "--n", "3", "--json", str(js),
                 "--out", str(figs), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "condition" in out
    res = json.loads(js.read_text())
    assert res["samples"] == 3 and len(res["layers"]) == 5 and len(res["sample_indices"]) == 3
    first = res["layers"][0]
    assert len(first["singular_values"][0]) == 24 and first["rank"] == [24, 24, 24]
    assert (figs / "effect_of_relu.png").stat().st_size > 0 and (figs / "decay_over_layers.png").exists()


def test_cli_bad_layer_is_one_line_error(capsys, checkpoint):
    code = main(["jacobian", str(checkpoint), "--data", "digits", "--layers", "9", "--quiet"])
    assert code == 2 and "out of range" in capsys.readouterr().err


def test_report_section(checkpoint):
    from reluscope.data import load
    from reluscope.jacobian.report import _outputs_for, build

    model = nets.read_model_file(str(checkpoint)).model
    ctx = ReportContext(model=model, net=nets.load(model), data=load("digits"), quick=True)
    sec = build(ctx)
    assert sec.numbers["samples"] == 2 and "<img" in sec.body and sec.json["layers"]
    big = nets.load(nets.mlp([2000, 1500, 3]))
    assert _outputs_for(big, quick=True) == [1]  # only the 3-unit output layer stays small
    with pytest.raises(NotApplicable):
        _outputs_for(nets.load(nets.mlp([2000, 1500])), quick=True)
