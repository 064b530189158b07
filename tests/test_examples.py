"""The examples and docstring examples run as documented."""

from __future__ import annotations

import doctest
import runpy
from pathlib import Path

import pytest

import reluscope.data
import reluscope.nets._builders
import reluscope.nets._import

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("module", [reluscope.data, reluscope.nets._builders, reluscope.nets._import])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_quickstart_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "test accuracy" in out and (tmp_path / "quickstart-report" / "index.html").is_file()


def test_shadow_loop_runs(capsys):
    runpy.run_path(str(EXAMPLES / "shadow_loop.py"), run_name="__main__")
    *_, last, conditions = capsys.readouterr().out.strip().splitlines()
    assert last.startswith("epoch 5: test accuracy") and float(last.split()[-1]) > 0.8
    # digits' 64 pixels under a 256-wide first layer: outside the theory, and the example says so
    assert conditions.startswith("the theory's conditions:") and "'narrower': False" in conditions
