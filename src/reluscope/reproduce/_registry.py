"""Paper reproductions: each part is one function registered under its paper."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..report._registry import Entry, Section

PAPERS = {
    "arora": "Arora, Liang & Ma (2015): why are deep nets reversible",
    "behrmann": "Behrmann, Dittmer, Fernsel & Maass (2018): invertibility of ReLU networks",
    "tian": "Tian (2018): a theoretical framework for deep locally connected ReLU networks",
}

_PARTS: dict[str, dict[str, Entry]] = {p: {} for p in PAPERS}


def _default_data(name: str) -> str:
    """`$RELUSCOPE_DATA/name`, else `../shared/data/name` when present, else ''."""
    for root in (os.environ.get("RELUSCOPE_DATA"), "../shared/data"):
        if root and (Path(root) / name).is_dir():
            return str(Path(root) / name)
    return ""


@dataclass
class ReproConfig:
    """How to run a reproduction. `quick` is the reduced configuration (CI)."""

    quick: bool = True
    seed: int = 0
    device: str = "cpu"
    out_dir: Path = Path("reluscope-reproduce")
    mnist: str = field(default_factory=lambda: _default_data("mnist") or "torchvision:MNIST")
    cifar: str = field(default_factory=lambda: _default_data("cifar10-jpg") or "torchvision:CIFAR10")
    cache: dict = field(default_factory=dict)


def part(paper: str, key: str, title: str, order: int = 100):
    """Register `fn(cfg: ReproConfig) -> Section` (with claims) as a part of `paper`."""

    def register(fn: Callable[[ReproConfig], Section]):
        _PARTS[paper][key] = Entry(key, title, order, fn)
        return fn

    return register


def parts(paper: str) -> list[Entry]:
    return sorted(_PARTS[paper].values(), key=lambda e: (e.order, e.key))
