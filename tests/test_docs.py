"""The documentation site: it builds without a warning, and its examples run.

Conventions for code blocks in `docs/*.md` (state them here, keep them on every page):

- ```` ```python ```` blocks run: each page's blocks in order, in one namespace, in a fresh
  temporary working directory. Keep them to seconds: small models on the embedded `digits`
  data, quick options.
- ```` ```py ```` blocks are shown, never run: code that names a user's own files, a
  cluster, or runs for minutes. Write them as carefully; they are highlighted the same.
- ```` ```console ```` blocks run their `$ reluscope ...` lines (output lines are ignored)
  through click's `CliRunner`, in order, in a fresh temporary directory per page. Only cheap
  commands belong there.
- ```` ```bash ````, ```` ```text ```` and indented blocks are shown, never run (long runs,
  other programs, paths of the user's own data).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
                   re.MULTILINE | re.DOTALL)


def blocks(page: Path, info: str) -> list[str]:
    """The bodies of the fenced blocks of `page` whose info string is exactly `info`."""
    out = []
    for m in FENCE.finditer(page.read_text(encoding="utf-8")):
        if m["info"].strip() == info:
            indent = len(m["indent"])
            out.append("\n".join(line[indent:] for line in m["body"].splitlines()))
    return out


def commands(page: Path) -> list[list[str]]:
    """The arguments of every `$ reluscope ...` line in the page's console blocks."""
    out = []
    for body in blocks(page, "console"):
        for line in body.splitlines():
            if line.startswith("$ reluscope "):
                out.append(shlex.split(line[len("$ reluscope "):], comments=True))
    return out


def test_site_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0 and not warnings, log
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "preimage" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        assert str(page.relative_to(DOCS)) in nav, f"{page.name} is not in mkdocs.yml's nav"


def test_conventions_hold():
    """No other Python fence spelling slips in unrun (```Python, ```python3, ...)."""
    for page in PAGES:
        for m in FENCE.finditer(page.read_text(encoding="utf-8")):
            info = m["info"].strip()
            assert info in {"python", "py", "console", "bash", "text", "toml", ""}, (page.name, info)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(blocks(page, "python")):
        try:
            exec(compile(code, f"{page.name}[python block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"{page.name}, python block {i} failed:\n{code}") from exc


@pytest.mark.parametrize("page", [p for p in PAGES if commands(p)], ids=lambda p: p.name)
def test_console_blocks_run(page, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from reluscope.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    for args in commands(page):
        result = runner.invoke(cli, args, catch_exceptions=False, env={"COLUMNS": "100"})
        assert result.exit_code == 0, f"{page.name}: reluscope {' '.join(args)}\n{result.output}"


def test_conventions_are_used():
    """Each convention is exercised somewhere, so the test above is not vacuous."""
    assert sum(len(blocks(p, "python")) for p in PAGES) >= 8
    assert sum(len(commands(p)) for p in PAGES) >= 5
    assert os.path.exists(ROOT / "mkdocs.yml")
