"""Sweep grids: a TOML file expanded into cells, each with a stable key."""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Cell:
    """One point of the grid: the task's parameters and seed."""

    params: dict[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """Stable name of the cell: a hash of its parameters and seed."""
        text = json.dumps({"params": self.params, "seed": self.seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Grid:
    """A sweep: `task` run on every combination of `grid` values, for every seed.

    TOML layout:

        [sweep]
        task = "train"            # see `reluscope sweep --list-tasks`, or "module:function"
        seeds = [0, 1, 2]
        [fixed]                   # parameters shared by every cell
        data = "digits"
        [grid]                    # parameters to vary: every combination is a cell
        lr = [0.01, 0.1]
    """

    task: str
    seeds: tuple[int, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        names = sorted(self.grid)
        combos = itertools.product(*(self.grid[n] for n in names)) if names else [()]
        return [Cell({**self.fixed, **dict(zip(names, values))}, seed)
                for values in combos for seed in self.seeds]


def read_grid(path: str | Path) -> Grid:
    """Parse a grid file; every problem is a ConfigError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file '{path}' does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"'{path}' is not valid TOML ({exc})") from None
    sweep = doc.get("sweep", {})
    if "task" not in sweep:
        raise ConfigError(f"'{path}' needs a [sweep] table with task = \"...\"")
    seeds = sweep.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds) or not seeds:
        raise ConfigError(f"[sweep] seeds in '{path}' must be a non-empty list of integers")
    grid = doc.get("grid", {})
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"[grid] {name} in '{path}' must be a non-empty list of values")
    unknown = set(doc) - {"sweep", "fixed", "grid"}
    if unknown:
        raise ConfigError(f"unknown tables {sorted(unknown)} in '{path}'; use [sweep], [fixed], [grid]")
    return Grid(str(sweep["task"]), tuple(seeds), dict(doc.get("fixed", {})), dict(grid))
