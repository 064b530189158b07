"""`reluscope info` on a model that is not a chain: the node table and JSON `nodes`."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from reluscope import nets
from reluscope.cli._main import cli
from tests.graph_models import ALL

pytestmark = pytest.mark.usefixtures("trust_pickles")  # the tests save whole modules

def test_info_tiny_resnet(tmp_path):
    model, shape = ALL["tiny_resnet"]()
    path, js = tmp_path / "resnet.pt", tmp_path / "info.json"
    torch.save(model, path)
    res = CliRunner().invoke(cli, ["info", str(path), "--input-shape", ",".join(map(str, shape)),
                                   "--json", str(js), "--quiet"])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split()
    assert header == ["node", "op", "type", "inputs", "out_shape", "parameters", "activation"]
    assert "b2_short" in res.output and "add" in res.output and "not a chain" in res.output
    data = json.loads(js.read_text())
    assert "layers" not in data and data["chain"] is False
    graph = nets.load(model, input_shape=shape)
    assert [n["name"] for n in data["nodes"]] == [n.name for n in graph.nodes[1:]]
    fc = next(n for n in data["nodes"] if n["name"] == "fc")
    assert fc["op"] == "affine" and fc["out_shape"] == [3] and fc["parameters"] == 8 * 3 + 3


def test_info_chain_keeps_layers_and_adds_nodes(tmp_path):
    path, js = tmp_path / "mlp.pt", tmp_path / "info.json"
    torch.save(nets.mlp([6, 5, 2]), path)
    res = CliRunner().invoke(cli, ["info", str(path), "--json", str(js), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].split()[:2] == ["name", "type"]
    data = json.loads(js.read_text())
    assert data["chain"] is True and data["layers"][0]["out_shape"] == [5]
    assert any(n["op"] == "affine" for n in data["nodes"])
