"""The `reluscope` command: help everywhere, info, train, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.cli import main
from reluscope.cli._main import _SUBCOMMANDS

pytestmark = pytest.mark.usefixtures("trust_pickles")  # the tests save whole modules

def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", sorted(_SUBCOMMANDS))
def test_help_on_every_subcommand(capsys, name):
    code, out, _ = run(capsys, name, "--help")
    assert code == 0 and "Usage" in out
    if name not in ("info", "train", "report"):
        return
    assert "--quiet" in out and "--seed" in out and "--device" in out


def test_train_then_info(capsys, tmp_path):
    ckpt, js = tmp_path / "m.pt", tmp_path / "m.json"
    code, out, _ = run(capsys, "train", "--data", "digits", "--arch", "mlp:64-32-10", "--epochs", "2",
                       "--out", str(ckpt), "--json", str(js), "--quiet")
    assert code == 0 and "test accuracy" in out
    history = json.loads(js.read_text())["history"]
    assert len(history) == 2
    code, out, _ = run(capsys, "info", str(ckpt), "--json", str(tmp_path / "i.json"))
    assert code == 0
    assert "Linear" in out and "64" in out and "relu" in out
    assert json.loads((tmp_path / "i.json").read_text())["layers"][0]["out_shape"] == [32]


def test_info_conv_model_needs_shape(capsys, tmp_path):
    torch.save(nets.cifar_cnn(), tmp_path / "cnn.pt")
    code, _, err = run(capsys, "info", str(tmp_path / "cnn.pt"))
    assert code == 2 and "input_shape" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "info", str(tmp_path / "cnn.pt"), "--input-shape", "3,32,32")
    assert code == 0 and "Conv2d" in out and "64×8×8" in out


class Rnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 3)

    def forward(self, x):
        return self.lstm(x)[0]


def _one_line_error(capsys, *args, match: str):
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert err.startswith("reluscope: error:") and err.count("\n") == 1, err
    assert match in err
    assert "Traceback" not in err


def test_user_errors_are_one_line(capsys, tmp_path):
    _one_line_error(capsys, "info", str(tmp_path / "missing.pt"), match="does not exist")
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04garbage")
    _one_line_error(capsys, "info", str(tmp_path / "corrupt.pt"), match="corrupt")

    torch.save(Rnn(), tmp_path / "rnn.pt")
    _one_line_error(capsys, "info", str(tmp_path / "rnn.pt"), match="LSTM")
    nan = nets.mlp([3, 2])
    with torch.no_grad():
        nan[1].bias[0] = float("nan")
    torch.save(nan, tmp_path / "nan.pt")
    _one_line_error(capsys, "info", str(tmp_path / "nan.pt"), match="NaN")
    torch.save(nets.mlp([5, 2]), tmp_path / "mlp5.pt")
    _one_line_error(capsys, "info", str(tmp_path / "mlp5.pt"), "--input-shape", "3,32,32",
                    match="does not fit")
    _one_line_error(capsys, "train", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "x.pt"),
                    match="not found")
    _one_line_error(capsys, "train", "--arch", "resnet", "--out", str(tmp_path / "x.pt"),
                    match="unknown architecture")
    _one_line_error(capsys, "info", str(tmp_path / "mlp5.pt"), "--device", "cuda:7", match="device")


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reluscope", "info", str(tmp_path / "nope.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
