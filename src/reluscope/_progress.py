"""Progress bars: shown on a terminal, silent with --quiet, in pipes and in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

# Plain tqdm, not tqdm.auto: bars need a terminal (see `enabled`), and tqdm.auto warns in a
# Jupyter kernel without ipywidgets.
from tqdm import tqdm

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    return not _quiet and sys.stderr.isatty() and not os.environ.get("CI")


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: int | None = None,
             leave: bool = False) -> tqdm:
    """A tqdm bar that is disabled when progress is off (see `enabled`)."""
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=not enabled(),
                dynamic_ncols=True)
