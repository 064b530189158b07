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


def _check_pages(out, papers) -> None:
    for paper in papers:
        written = json.loads((out / f"{paper}-claims.json").read_text())
        failed = [(o["key"], o["message"]) for o in written["outcomes"] if o["status"] != "ok"]
        assert not failed, f"{paper}: {failed}"
        assert written["claims"] and all(c["holds"] in (True, False, None) for c in written["claims"])
        page = (out / f"{paper}.html").read_text()
        assert "claim in the paper" in page and "<th>part</th>" in page


def test_quick_reproduce_all_command(tmp_path, mnist_dir, cifar_dir):
    """Exactly what a user runs: `reluscope reproduce all` in the reduced configuration."""
    args = ["reproduce", "all", "--out", str(tmp_path), "--mnist", str(mnist_dir), "--cifar", str(cifar_dir)]
    assert main([*args, "--quiet"]) == 0
    _check_pages(tmp_path, PAPERS)


def test_quick_tian_needs_no_data(tmp_path):
    path, outcomes = reproduce("tian", ReproConfig(quick=True, out_dir=tmp_path, mnist="", cifar=""),
                               strict=True)
    assert path.is_file()
    _check_pages(tmp_path, ["tian"])


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
