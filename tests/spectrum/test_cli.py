"""`reluscope spectrum`: table, JSON, figures, initial model, errors."""

import copy
import json

import pytest
import torch

from reluscope import nets
from reluscope.cli import main

pytestmark = pytest.mark.usefixtures("trust_pickles")  # the tests save whole modules

def test_spectrum_command_with_checkpoint_init(tmp_path, capsys):
    torch.manual_seed(0)
    model = nets.build("mlp:32", (1, 8, 8), 10)
    path = nets.save_checkpoint(tmp_path / "m.pt", model, "mlp:32", (1, 8, 8), 10,
                                init_model=copy.deepcopy(model))
    out_json, figs = tmp_path / "s.json", tmp_path / "figs"
    assert main(["spectrum", str(path), "--init", "--json", str(out_json), "--out", str(figs), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "verdict" in printed and "init_verdict" in printed
    data = json.loads(out_json.read_text())
    assert [r["layer"] for r in data["table"]] == ["1", "3"]
    assert data["settings"]["init"] == "given"
    assert (figs / "summary.png").is_file() and (figs / "layer-1.png").is_file()


def test_conv_model_needs_input_shape(tmp_path, capsys):
    path = tmp_path / "cnn.pt"
    torch.save(nets.cifar_cnn(1, 6, 10), path)
    assert main(["spectrum", str(path), "-q"]) == 2
    assert "input shape" in capsys.readouterr().err
    assert main(["spectrum", str(path), "--input-shape", "1,6,6", "-q"]) == 0
    assert "operator norm" in capsys.readouterr().out


def test_bad_arguments(tmp_path, capsys):
    assert main(["spectrum", str(tmp_path / "missing.pt")]) == 2
    path = tmp_path / "m.pt"
    torch.save(nets.mlp([4, 8, 2]), path)
    assert main(["spectrum", str(path), "--false-alarm", "2"]) == 2
    assert "false-alarm" in capsys.readouterr().err
