"""Assemble sections into one self-contained HTML file (the report, the reproductions)."""

from __future__ import annotations

import html
import importlib
import platform
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .. import __version__
from .._io import atomic_write_text, write_json
from .._progress import progress
from ..errors import NotAChainError
from ._html import table_html
from ._registry import Claim, Entry, NotApplicable, ReportContext, Section, sections

# Modules whose import registers sections (one line per analysis).
SECTION_MODULES = [
    "reluscope.report._core_sections",
    "reluscope.teacher.report",
    "reluscope.shadow.report",
    "reluscope.preimage.report",
    "reluscope.spectrum.report",
    "reluscope.jacobian.report",
]


@dataclass(frozen=True)
class SectionOutcome:
    key: str
    title: str
    status: str  # "ok", "not applicable" or "failed"
    seconds: float
    message: str = ""
    claims: tuple[Claim, ...] = ()


class Report(NamedTuple):
    """What `build_report` returns: the page written and each section's outcome.

    Unpacks as `path, outcomes = build_report(...)`; in Jupyter it displays the page itself
    (an iframe of the self-contained HTML, `height` pixels high, scrolling).
    """

    path: Path
    outcomes: list[SectionOutcome]

    height = 640  # pixels of the iframe in a notebook

    @property
    def sections(self) -> dict[str, str]:
        """Section key -> "ok", "not applicable" or "failed"."""
        return {o.key: o.status for o in self.outcomes}

    def _repr_html_(self) -> str:
        page = Path(self.path).read_text(encoding="utf-8")
        # In an iframe's srcdoc, "#section" links resolve against the notebook's URL and would load it
        # into the frame; this base keeps them inside the report.
        page = page.replace("<head>", '<head><base href="about:srcdoc" target="_self">', 1)
        counts = {s: sum(o.status == s for o in self.outcomes) for s in ("ok", "not applicable", "failed")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        return (f"<p><strong>reluscope report</strong> <code>{html.escape(str(self.path))}</code> "
                f"({len(self.outcomes)} sections: {summary or 'none'})</p>"
                f'<iframe srcdoc="{html.escape(page, quote=True)}" title="reluscope report" '
                f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd"></iframe>')


def load_sections() -> None:
    for name in SECTION_MODULES:
        importlib.import_module(name)


def run_sections(entries: Sequence[Entry], arg: Any, out: Path,
                 strict: bool = False) -> tuple[list[str], list[SectionOutcome]]:
    """Build each entry with `arg`, write its JSON into `out`, and render it.

    A section that does not apply says why; one that fails is shown as failed with its
    error (or re-raised with `strict=True`), so one broken analysis never loses the rest.
    """
    rendered, outcomes = [], []
    for entry in progress(entries, desc="sections"):
        start = time.perf_counter()
        try:
            sec, status, message = entry.build(arg), "ok", ""
        except (NotApplicable, NotAChainError) as exc:
            sec, status, message = None, "not applicable", str(exc)
        except Exception as exc:
            if strict:
                raise
            sec, status, message = None, "failed", f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        seconds = time.perf_counter() - start
        claims = tuple(sec.claims) if sec is not None else ()
        outcomes.append(SectionOutcome(entry.key, entry.title, status, seconds, message, claims))
        if sec is not None and sec.json is not None:
            write_json(out / f"{entry.key}.json", sec.json)
        rendered.append(_section_html(entry.key, entry.title, sec, status, message, seconds))
    return rendered, outcomes


def build_report(ctx: ReportContext, only: list[str] | None = None,
                 strict: bool = False) -> Report:
    """Run every registered section on `ctx`; write `ctx.out_dir/index.html` and JSON files.

    Returns a `Report`: a named tuple `(path, outcomes)` that shows the page in Jupyter."""
    load_sections()
    out = Path(ctx.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = [e for e in sections() if only is None or e.key in only]
    rendered, outcomes = run_sections(entries, ctx, out, strict)
    meta = [("command", ctx.command or "(Python API)"), ("seed", ctx.seed), ("device", ctx.device),
            ("configuration", "quick (reduced)" if ctx.quick else "full")]
    intro = ("Is this ReLU net reversible, invertible, stable, and what did it learn? Each "
             "section below runs one analysis on the model; numbers first, then figures.")
    path = write_page(out / "index.html", "reluscope report", intro, meta, rendered, outcomes)
    write_json(out / "outcomes.json", outcomes)
    return Report(path, outcomes)


def claims_table(claims: Sequence[Claim], parts: Sequence[str] | None = None) -> str:
    """Claim / measured / holds?, with a first column naming each claim's part when given."""
    mark = {True: "holds", False: "does not hold", None: "undecided"}
    rows = [(c.claim, c.measured, mark[c.holds]) for c in claims]
    if parts is None:
        return table_html(["claim in the paper", "what we measured", "holds?"], rows)
    return table_html(["part", "claim in the paper", "what we measured", "holds?"],
                      [(p, *r) for p, r in zip(parts, rows)])


def _section_html(key: str, title: str, sec: Section | None, status: str, message: str,
                  seconds: float) -> str:
    head = f'<section id="{key}"><h2>{html.escape(title)}</h2>'
    if sec is None:
        cls = "na" if status == "not applicable" else "failed"
        text = f"{status.capitalize()}: {message}"
        return f'{head}<p class="{cls}">{html.escape(text)}</p></section>'
    parts = [head]
    if sec.reading:
        parts.append(f'<p class="reading">{html.escape(sec.reading)}</p>')
    if sec.numbers:
        numbers = table_html(["quantity", "value"], sec.numbers.items())
        parts.append(f'<div class="numbers">{numbers}</div>')
    if sec.claims:
        parts.append(claims_table(sec.claims))
    parts.append(sec.body)
    links = f'<a href="{key}.json">{key}.json</a> · ' if sec.json is not None else ""
    parts.append(f'<p class="meta">{links}computed in {seconds:.1f} s</p></section>')
    return "".join(parts)


def _versions() -> str:
    import numpy
    import torch

    return (f"reluscope {__version__}, Python {platform.python_version()}, torch {torch.__version__}, "
            f"numpy {numpy.__version__}")


def write_page(path: Path, title: str, intro: str, meta: list[tuple[str, Any]], rendered: list[str],
               outcomes: list[SectionOutcome], preamble: str = "") -> Path:
    """Write one self-contained page: header, run facts, contents, sections."""
    toc = "".join(
        f'<li><a href="#{o.key}">{html.escape(o.title)}</a>'
        f'{"" if o.status == "ok" else f" <small>({o.status})</small>"}</li>' for o in outcomes)
    facts = table_html(None, [*meta, ("versions", _versions()),
                                  ("written", time.strftime("%Y-%m-%d %H:%M:%S"))])
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>{html.escape(title)}</h1>
<p class="reading">{html.escape(intro)}</p>
{facts}
<nav><h2>Contents</h2><ol>{toc}</ol></nav>
{preamble}
{''.join(rendered)}
<footer>Written by reluscope {html.escape(__version__)}.</footer>
</main></body></html>
"""
    return atomic_write_text(path, page)


_CSS = """
body{font:15px/1.5 system-ui,sans-serif;color:#1d1d1f;background:#fafafa;margin:0}
main{max-width:1000px;margin:0 auto;padding:24px 32px;background:#fff}
h1{margin-top:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0;font-size:13px}.table{overflow-x:auto;max-width:100%}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f2f2f2}
figure{margin:16px 0 20px}img{display:block;max-width:100%;height:auto}
figcaption{font-size:14px;color:#333;margin-top:6px;max-width:60em}
.reading{background:#f3f7fc;border-left:3px solid #4a7cc9;padding:6px 10px}
.na{color:#666;font-style:italic}.failed{color:#b00020}
.meta{font-size:12px;color:#777}footer{margin-top:3em;font-size:12px;color:#777}
"""
