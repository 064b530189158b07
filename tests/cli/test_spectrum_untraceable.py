"""`reluscope spectrum` on a model torch.fx cannot trace reads the weights from its modules;
the commands that need the graph refuse it in one line."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from reluscope.cli import main


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if h.sum() > 0:
            h = torch.relu(self.fc2(h))
        return self.head(h)


pytestmark = pytest.mark.usefixtures("trust_pickles")  # the tests save whole modules

def test_spectrum_falls_back_to_the_module_weights(tmp_path, capsys):
    torch.manual_seed(0)
    path, js = tmp_path / "branchy.pt", tmp_path / "s.json"
    torch.save(Branchy(), path)
    assert main(["spectrum", str(path), "--init", "--json", str(js)]) == 0
    out, err = capsys.readouterr()
    assert "does not import as a graph" in err and "torch.fx" in err
    assert "fc1" in out and "head" in out
    data = json.loads(js.read_text())
    assert [r["layer"] for r in data["table"]] == ["fc1", "fc2", "head"]
    assert data["settings"]["init"] == "re-initialised"


def test_commands_that_need_the_graph_refuse_in_one_line(tmp_path, capsys):
    path = tmp_path / "branchy.pt"
    torch.save(Branchy(), path)
    for command in ("info", "jacobian"):
        assert main([command, str(path), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("reluscope: error:") and err.count("\n") == 1, err
        assert "cannot trace the forward of Branchy with torch.fx" in err and "control flow" in err
