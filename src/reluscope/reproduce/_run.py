"""Run a paper's reproduction parts and write one page per paper with its claims table."""

from __future__ import annotations

import importlib
from pathlib import Path

from .._io import write_json
from ..errors import ConfigError
from ..report._build import SectionOutcome, claims_table, run_sections, write_page
from ._registry import PAPERS, ReproConfig, parts

# Modules whose import registers reproduction parts.
PART_MODULES = [
    "reluscope.reproduce._core_parts",
]


def load_parts() -> None:
    for name in PART_MODULES:
        importlib.import_module(name)


def reproduce(paper: str, cfg: ReproConfig, only: list[str] | None = None,
              strict: bool = False) -> tuple[Path, list[SectionOutcome]]:
    """Run `paper`'s parts (or `only` these) and write `cfg.out_dir/<paper>.html`."""
    if paper not in PAPERS:
        raise ConfigError(f"unknown paper '{paper}'; choose from {', '.join(PAPERS)} or all")
    load_parts()
    entries = [e for e in parts(paper) if only is None or e.key in only]
    if only is not None and len(entries) != len(only):
        known = ", ".join(e.key for e in parts(paper))
        raise ConfigError(f"unknown part in {only} for {paper}; parts are: {known}")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rendered, outcomes = run_sections(entries, cfg, out, strict)
    claims = [c for o in outcomes for c in o.claims]
    held = sum(c.holds is True for c in claims)
    part_of = [o.title for o in outcomes for _ in o.claims]
    preamble = (f'<section id="claims-{paper}"><h2>Claims: {held} of {len(claims)} hold</h2>'
                f"{claims_table(claims, part_of)}</section>")
    meta = [("paper", PAPERS[paper]), ("seed", cfg.seed), ("device", cfg.device),
            ("configuration", "quick (reduced)" if cfg.quick else "full"),
            ("MNIST", cfg.mnist), ("CIFAR-10", cfg.cifar)]
    intro = ("Each part regenerates one of the paper's figures on the data at hand and sets "
             "the paper's claims beside what we measured — including where they do not hold.")
    path = write_page(out / f"{paper}.html", f"Reproduction: {PAPERS[paper]}", intro, meta,
                      rendered, outcomes, preamble)
    write_json(out / f"{paper}-claims.json", {"paper": paper, "claims": claims, "outcomes": outcomes})
    return path, outcomes
