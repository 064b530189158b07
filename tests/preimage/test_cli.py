"""`reluscope preimage`: JSON output, deeper layers, one-line errors."""

from __future__ import annotations

import json

import torch

from reluscope import nets
from reluscope.cli import main
from reluscope.data import load
from reluscope.preimage import classify


def _model(tmp_path):
    torch.manual_seed(0)
    model = nets.mlp([64, 48, 24, 10])
    path = tmp_path / "m.pt"
    nets.save_checkpoint(path, model, "mlp:48-24", (1, 8, 8), 10, 0.0)
    return model, path


def test_json_matches_direct_classification(tmp_path):
    model, path = _model(tmp_path)
    out = tmp_path / "p.json"
    assert main(["preimage", str(path), "--data", "digits", "--n", "12", "--workers", "1", "--quiet",
                 "--json", str(out), "--figure", str(tmp_path / "h.png")]) == 0
    res = json.loads(out.read_text())
    assert res["n"] == 12 and sum(res["counts"].values()) == 12
    assert (tmp_path / "h.png").stat().st_size > 0
    x = load("digits").test.x[res["sample_indices"]].flatten(1).double()
    lin = model[1]
    direct = [classify(lin.weight, lin.bias, xi).kind for xi in x]
    assert [s["kind"] for s in res["samples"]] == direct


def test_deeper_layer_states_its_space(tmp_path, capsys):
    _, path = _model(tmp_path)
    out = tmp_path / "p.json"
    assert main(["preimage", str(path), "--layer", "1", "--data", "digits", "--n", "5", "--workers", "1",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["inputs"] == 48 and res["outputs"] == 24
    assert "input space R^48" in res["space"] and "outputs of layer 0" in res["space"]
    assert "outputs of layer 0" in capsys.readouterr().out


def test_non_relu_layer_is_one_line_error(tmp_path, capsys):
    _, path = _model(tmp_path)
    assert main(["preimage", str(path), "--layer", "2", "--data", "digits", "--n", "3"]) == 2
    err = capsys.readouterr().err
    assert "not a plain ReLU" in err and len(err.strip().splitlines()) == 1
    assert main(["preimage", str(path), "--layer", "7", "--data", "digits", "--n", "3"]) == 2


def test_bad_tolerance_and_sample_count(tmp_path, capsys):
    _, path = _model(tmp_path)
    assert main(["preimage", str(path), "--data", "digits", "--rank-tol", "2"]) == 2
    assert main(["preimage", str(path), "--data", "digits", "--n", "0"]) == 2
    err = capsys.readouterr().err
    assert "--rank-tol" in err and "--n must be at least 1" in err


def test_relu_node_of_a_resnet_by_name(tmp_path, capsys):
    torch.manual_seed(0)
    model = nets.build("resnet20", (1, 8, 8), 10)
    path = tmp_path / "r.pt"
    nets.save_checkpoint(path, model, "resnet20", (1, 8, 8), 10, 0.0)
    out = tmp_path / "p.json"
    assert main(["preimage", str(path), "--layer", "stage1.0.relu2", "--data", "digits", "--n", "2",
                 "--workers", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["layer"] == "stage1.0.relu2" and res["sources"] == ["stem.relu", "stage1.0.relu1"]
    assert (res["outputs"], res["inputs"]) == (1024, 2048) and res["counts"]["unbounded"] == 2
    printed = capsys.readouterr().out
    assert "node 'stage1.0.relu2', 1024 x 2048" in printed and "joint space R^2048" in printed
    assert main(["preimage", str(path), "--layer", "stage1.0.conv1", "--data", "digits", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "not a plain ReLU" in err and "'stage1.0.relu2'" in err and len(err.strip().splitlines()) == 1
