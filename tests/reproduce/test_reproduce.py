"""`reluscope reproduce`: the reduced configuration of every paper runs and writes its claims."""

from __future__ import annotations

import json

import pytest

from reluscope.cli import main
from reluscope.reproduce import PAPERS, ReproConfig, parts, reproduce
from reluscope.reproduce._run import load_parts


def test_every_paper_has_parts():
    load_parts()
    for paper in PAPERS:
        assert parts(paper), f"no reproduction parts registered for {paper}"


@pytest.mark.parametrize("paper", sorted(PAPERS))
def test_quick_reproduction(paper, tmp_path, request):
    cfg = ReproConfig(quick=True, out_dir=tmp_path)
    if paper != "tian":  # Tian's experiments make their own data
        cfg.mnist, cfg.cifar = (str(request.getfixturevalue(f)) for f in ("mnist_dir", "cifar_dir"))
    path, outcomes = reproduce(paper, cfg, strict=True)
    assert path.is_file() and all(o.status == "ok" for o in outcomes)
    claims = json.loads((tmp_path / f"{paper}-claims.json").read_text())["claims"]
    assert claims and all(c["holds"] in (True, False, None) for c in claims)
    page = path.read_text()
    assert "claim in the paper" in page and "<th>part</th>" in page


@pytest.mark.slow
def test_full_reproduction_all(tmp_path):
    assert main(["reproduce", "all", "--full", "--out", str(tmp_path), "--quiet"]) == 0


def test_bad_part_is_a_clear_error(capsys, tmp_path):
    assert main(["reproduce", "tian", "--part", "nope", "--out", str(tmp_path)]) == 2
    assert "parts are" in capsys.readouterr().err


def test_failed_part_keeps_the_page_and_exits_1(tmp_path, monkeypatch, capsys):
    from reluscope.report._registry import Entry, Section
    from reluscope.reproduce import _registry

    load_parts()

    def broken(cfg):
        raise RuntimeError("boom")

    parts = {"ok": Entry("ok", "Fine part", 1, lambda cfg: Section("Fine part", "<p>fine</p>")),
             "broken": Entry("broken", "Broken part", 2, broken)}
    monkeypatch.setitem(_registry._PARTS, "tian", parts)
    assert main(["reproduce", "tian", "--out", str(tmp_path), "--quiet"]) == 1
    assert "1 of 2 parts failed (Broken part)" in capsys.readouterr().err
    page = (tmp_path / "tian.html").read_text()
    assert "fine" in page and "RuntimeError: boom" in page
