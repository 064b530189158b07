"""`reluscope teacher ...`, the report section and `reproduce`."""

from __future__ import annotations

import json

import pytest

from reluscope.cli import main
from reluscope.report._registry import ReportContext, Section


def test_cli_fc_and_lc_write_json(tmp_path, capsys):
    out = tmp_path / "fc.json"
    rc = main(["teacher", "fc", "--widths", "4,5", "--multi", "2", "--epochs", "1", "--n-train", "2000",
               "--json", str(out), "--plot", str(tmp_path / "fc.png"), "-q"])
    assert rc == 0 and (tmp_path / "fc.png").stat().st_size > 0
    data = json.loads(out.read_text())
    assert len(data["mean_best"]) == 2 and "layer 1: mean best correlation" in capsys.readouterr().out
    out = tmp_path / "lc.json"
    rc = main(["teacher", "lc", "--input-size", "8", "--m", "2,3,3,2", "--widths", "4,4", "--epochs", "1",
               "--n-train", "500", "--json", str(out), "--plot", str(tmp_path / "lc.png"), "-q"])
    assert rc == 0 and len(json.loads(out.read_text())["levels"]) == 2


def test_cli_user_errors_exit_2(capsys):
    assert main(["teacher", "lc", "--m", "2,3", "-q"]) == 2
    assert main(["teacher", "fc", "--widths", "a,b", "-q"]) == 2
    assert "error" in capsys.readouterr().err


def test_report_section_quick(tmp_path, monkeypatch):
    import reluscope.teacher.report as rep
    from reluscope.teacher import FCConfig

    # an even smaller FC run keeps the test short; the section's own quick config is ~5 s
    monkeypatch.setattr(rep, "quick_fc_config", lambda seed=0: FCConfig(widths=(4, 5), multi=2, n_train=2000,
                                                                        epochs=1, seed=seed))
    sec = rep.build(ReportContext(model=None, net=None, data=None, quick=True, out_dir=tmp_path))
    assert isinstance(sec, Section) and "<table>" in sec.body and "data:image/png" in sec.body
    assert sec.numbers["broken inputs rejected"] == "7/7"
    assert sec.numbers["theorem checks confirmed (conditions met)"] == "7/7"


@pytest.mark.slow
def test_reproduce_full():
    from reluscope.teacher.report import reproduce

    r = reproduce(quick=False)
    assert all(c.holds for c in r.theorems[::2]) and not any(c.holds for c in r.theorems[1::2])
    assert len(r.seed_results) == 3 and r.fc.students == 3 and [s.students for s in r.other_seeds] == [1, 1]
    assert r.verdict.holds, r.verdict.text
