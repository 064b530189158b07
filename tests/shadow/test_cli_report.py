"""`reluscope shadow theory|reconstruct` and the report section (tiny configurations)."""

from __future__ import annotations

import json

import pytest

from reluscope import data, nets
from reluscope.cli import main
from reluscope.report._registry import ReportContext, Section
from reluscope.shadow import _theory


def _tiny_theory(full=False, seed=0, exact_k=False, device="cpu"):
    t1 = _theory.theorem1(ns=(512,), ks=(16, 32), ratios=(1 / 4, 1 / 8), seeds=1, codes=8, seed=seed)
    ml = [_theory.multilayer(2, widths=[512, 256, 128], k_bottom=400, k_top=24, middle=(48, 96), seeds=1,
                             codes=8, seed=seed)]
    return _theory.TheoryResult(t1, ml, full)


@pytest.fixture()
def tiny_theory(monkeypatch):
    monkeypatch.setattr(_theory, "run_theory", _tiny_theory)


def test_theory_command_writes_json_and_plots(tmp_path, capsys, tiny_theory):
    out = tmp_path / "t.json"
    code = main(["shadow", "theory", "--json", str(out), "--plot-dir", str(tmp_path / "plots"), "-q"])
    assert code == 0 and "Theorem 1" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert set(res["theorem1"]["slopes"]) == {"none", "theory", "best"} and len(res["multilayer"]) == 1
    assert (tmp_path / "plots" / "theorem1.png").stat().st_size > 0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("shadow") / "m.pt"
    args = ["train", "--data", "digits", "--arch", "mlp:32-16", "--epochs", "1", "--out", str(path), "-q"]
    assert main(args) == 0
    return path


def test_reconstruct_command(tmp_path, capsys, checkpoint):
    out, grid = tmp_path / "r.json", tmp_path / "grid.png"
    code = main(["shadow", "reconstruct", str(checkpoint), "--data", "digits", "--images", "4", "--json",
                 str(out), "--plot", str(grid), "-q"])
    assert code == 0 and "layer 0" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["images"] == 4 and [lay["layer"] for lay in res["layers"]] == [0, 1]
    assert res["layers"][0]["errors"]["trained"]["mean"]["input"] >= 0 and grid.stat().st_size > 0
    assert main(["shadow", "reconstruct", str(checkpoint), "--images", "0", "-q"]) == 2
    assert main(["shadow", "reconstruct", str(checkpoint), "--layers", "9", "-q"]) == 2
    assert main(["shadow", "reconstruct", str(checkpoint), "--data", str(tmp_path / "nope"), "-q"]) == 2


def test_report_section_quick(tmp_path, tiny_theory):
    from reluscope.shadow import report

    ds = data.load("digits")
    model = nets.build("mlp:32-32-32-32-32", ds.spec.shape, ds.spec.classes)
    net = nets.load(model, input_shape=ds.spec.shape)
    sec = report.build(ReportContext(model=model, net=net, data=ds, quick=True, out_dir=tmp_path))
    assert isinstance(sec, Section) and sec.body.count("data:image/png") == 4 and "<table>" in sec.body
    assert len(sec.json["reconstruction"]["layers"]) == 4 and len(sec.claims) == 4  # 4 of 5 layers
    json.dumps(sec.json)
    sec = report.build(ReportContext(model=None, net=None, data=None, quick=True, out_dir=tmp_path))
    assert "not applicable" in sec.body and len(sec.claims) == 3
