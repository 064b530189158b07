"""The registry of report sections: a new analysis adds one decorated function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._display import Tabular


@dataclass
class ReportContext:
    """Everything a section may use. Sections read it; they never retrain the model.

    `cache` lets sections share expensive results (e.g. a batch of test inputs).
    `quick` asks for a reduced configuration (CI, `make report`).
    """

    model: Any  # the trained torch.nn.Module
    net: Any  # reluscope.nets.ReluNet of `model`
    data: Any  # reluscope.data.Dataset
    seed: int = 0
    device: str = "cpu"
    out_dir: Path = Path("reluscope-report")
    quick: bool = True
    training: Any = None  # reluscope.train.TrainResult, when the report trained the model
    init_model: Any = None  # same architecture at initialisation, when known
    command: str = ""
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim(Tabular):
    """A paper's claim next to what we measured. `holds` is None when undecided."""

    claim: str
    measured: str
    holds: bool | None

    def to_dict(self) -> dict:
        return dict(claim=self.claim, measured=self.measured, holds=self.holds)


@dataclass
class Section:
    """One section of the report.

    Arguments:
        title: heading shown in the table of contents.
        body: HTML fragment (figures embedded with `figure_html`).
        numbers: key numbers shown in a small table at the top of the section.
        reading: a short plain-language reading of what the numbers mean.
        json: results written next to the report as `<key>.json` and linked.
        claims: the paper's claims checked here (rendered as a table; the reproduction
            pages collect them).
    """

    title: str
    body: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    reading: str = ""
    json: Any = None
    claims: list[Claim] = field(default_factory=list)


class NotApplicable(Exception):
    """Raised by a section that does not apply to this model; the message says why."""


@dataclass(frozen=True)
class Entry:
    key: str
    title: str
    order: int
    build: Callable[[Any], Section]


_SECTIONS: dict[str, Entry] = {}


def section(key: str, title: str, order: int = 100):
    """Register `fn(ctx) -> Section` as report section `key` (sorted by `order`)."""

    def register(fn: Callable[[ReportContext], Section]):
        _SECTIONS[key] = Entry(key, title, order, fn)
        return fn

    return register


def sections() -> list[Entry]:
    return sorted(_SECTIONS.values(), key=lambda e: (e.order, e.key))
