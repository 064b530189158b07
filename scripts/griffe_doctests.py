"""Griffe extension for the docs site: show docstring doctests as code.

reluscope's docstrings hold doctests in their running text (`>>> ...` and the expected
output), which Markdown would read as nested block quotes and `[...]` reference links. This
extension fences every run of doctest lines as `pycon` code, except inside a Google
`Examples:` section, which griffe already renders as code. The source is not changed.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wrap each run of doctest lines (prompts, continuations, output) in a pycon fence."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(">>>") and not _in_examples_section(lines, i):
            indent = line[: len(line) - len(stripped)]
            j = i
            while j < len(lines) and lines[j].strip() and lines[j].startswith(indent):
                j += 1
            out += [f"{indent}```pycon", *lines[i:j], f"{indent}```"]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _in_examples_section(lines: list[str], i: int) -> bool:
    """Whether line `i` sits under a Google `Examples:` heading (a less indented line above)."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    for k in range(i - 1, -1, -1):
        above = lines[k]
        if above.strip() and len(above) - len(above.lstrip()) < indent:
            return above.strip() == "Examples:"
    return False


class DoctestFences(griffe.Extension):
    """Fence the doctests of every object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
