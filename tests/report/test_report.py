"""The report: every registered section, self-contained HTML, and a real browser."""

from __future__ import annotations

import json
import re

import pytest

from reluscope.cli import main
from reluscope.report import ReportContext, Section, build_report, section
from reluscope.report._registry import _SECTIONS
from reluscope.report._run import prepare_context

from ._browser import headless_chromium


def test_every_section_runs(quick_report):
    path, outcomes = quick_report
    failed = [(o.key, o.message) for o in outcomes if o.status == "failed"]
    assert not failed
    assert {"model", "training"} <= {o.key for o in outcomes if o.status == "ok"}
    html = path.read_text()
    for o in outcomes:
        assert f'id="{o.key}"' in html


def test_report_is_self_contained(quick_report):
    path, outcomes = quick_report
    html = path.read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, "the report links nothing"
    for s in sources:  # embedded images, in-page anchors, and the JSON files beside it
        assert s.startswith(("data:image/png;base64,", "#")) or (path.parent / s).is_file(), s
    assert "<script" not in html.lower()  # nothing to fetch or run
    data = json.loads((path.parent / "model.json").read_text())
    assert data["layers"][0]["kind"] == "linear"


def test_not_applicable_and_failing_sections_do_not_break_the_report(tmp_path):
    from reluscope.report import NotApplicable

    @section("zz-na", "Needs a CNN", order=999)
    def _na(ctx):
        raise NotApplicable("the model has no conv layer")

    @section("zz-fail", "Broken", order=1000)
    def _fail(ctx):
        raise RuntimeError("boom")

    @section("zz-ok", "Tiny", order=1001)
    def _ok(ctx):
        return Section("Tiny", "<p>hi</p>", {"x": 1.5}, "a reading")

    try:
        ctx = prepare_context(data="digits", epochs=1, out_dir=tmp_path)
        path, outcomes = build_report(ctx, only=["zz-na", "zz-fail", "zz-ok"])
        status = {o.key: o.status for o in outcomes}
        assert status == {"zz-na": "not applicable", "zz-fail": "failed", "zz-ok": "ok"}
        html = path.read_text()
        assert "the model has no conv layer" in html and "RuntimeError: boom" in html
        with pytest.raises(RuntimeError):
            build_report(ctx, only=["zz-fail"], strict=True)
        # the command writes the page and says so, but exits 1 because a section failed
        args = ["report", "--epochs", "1", "--out", str(tmp_path / "cli"),
                "--only", "zz-fail", "--only", "zz-ok"]
        assert main([*args, "--quiet"]) == 1
        assert (tmp_path / "cli" / "index.html").is_file()
        assert main([*args[:-4], "--only", "zz-ok", "--quiet"]) == 0
    finally:
        for key in ("zz-na", "zz-fail", "zz-ok"):
            _SECTIONS.pop(key, None)


@pytest.mark.browser
def test_report_in_headless_chromium(quick_report):
    """No console errors, every image decodes, every table-of-contents link resolves."""
    path, outcomes = quick_report
    with headless_chromium(browser_log=True) as driver:
        driver.get(path.as_uri())
        assert driver.title == "reluscope report"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        assert images, "no images in the report"
        bad = [alt for alt, complete, width in images if not complete or width == 0]
        assert not bad, f"images that do not decode: {bad}"
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href'))")
        assert len(links) == len(outcomes)
        missing = driver.execute_script(
            "return arguments[0].filter(h => !document.getElementById(h.slice(1)))", links)
        assert not missing, f"table-of-contents links without a target: {missing}"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors


def test_context_from_a_checkpoint(tmp_path):
    from reluscope.cli import main

    ckpt = tmp_path / "m.pt"
    assert main(["train", "--epochs", "2", "--arch", "mlp:32", "--out", str(ckpt), "--quiet"]) == 0
    ctx = prepare_context(model=str(ckpt), data="digits", out_dir=tmp_path / "r")
    assert isinstance(ctx, ReportContext)
    assert len(ctx.training.history) == 2 and ctx.init_model is not None
    path, outcomes = build_report(ctx, only=["model", "training"], strict=True)
    assert [o.status for o in outcomes] == ["ok", "ok"]


def test_report_result_unpacks_and_shows_itself_in_jupyter(quick_report):
    import html

    from reluscope.report import Report

    rep = quick_report
    path, outcomes = rep
    assert isinstance(rep, Report) and rep.path == path and rep.outcomes is outcomes
    assert rep.sections == {o.key: o.status for o in outcomes} and "spectrum" in rep.sections
    shown = rep._repr_html_()
    assert shown.count("<iframe srcdoc=") == 1 and f"{len(outcomes)} sections" in shown
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', shown).group(1))  # escaped: no raw quote inside
    assert '<base href="about:srcdoc"' in page and "Random-like weights" in page


def test_report_trains_a_conv_arch_and_shows_its_graph(tmp_path):
    # A conv-first architecture has no input shape to infer: it comes from the data.
    from reluscope.report._core_sections import model_section

    ctx = prepare_context(data="digits", arch="resnet20", epochs=1, out_dir=tmp_path)
    assert ctx.net.input_shape == (1, 8, 8) and not ctx.net.is_chain
    sec = model_section(ctx)
    assert "stage2.0.conv1" in sec.body and "stage2.0.add" in sec.body
