"""Finished cells on disk: one JSON file per cell, written atomically.

A cell file exists only once its cell has finished, so a crashed or interrupted sweep
resumes by skipping the cells that have files; a cell is never stored twice because its
file name is its key.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .._io import write_json
from ._grid import Cell


def cell_path(out: Path, key: str) -> Path:
    return Path(out) / "cells" / f"{key}.json"


def finished_keys(out: Path) -> set[str]:
    folder = Path(out) / "cells"
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def store_record(out: Path, record: dict) -> bool:
    """Write a finished cell unless it is stored already; True if this call stored it."""
    path = cell_path(out, record["key"])
    if path.exists():
        return False
    write_json(path, record)
    return True


def read_record(out: Path, key: str) -> dict:
    return json.loads(cell_path(out, key).read_text())


def gather(out: Path, cells: list[Cell]) -> list[dict]:
    """One flat row per finished cell of `cells`, in grid order (params, seed, results)."""
    done = finished_keys(out)
    rows = []
    for cell in cells:
        if cell.key not in done:
            continue
        rec = read_record(out, cell.key)
        rows.append({"cell": cell.key, **cell.params, "seed": cell.seed, **rec["results"],
                     "seconds": rec["seconds"]})
    return rows


def write_table(rows: list[dict], path: Path) -> Path:
    """Write rows as CSV, or Parquet when `path` ends in .parquet (needs pyarrow)."""
    path = Path(path)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if path.suffix == ".parquet":
        from ..errors import ConfigError

        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError("Parquet output needs pyarrow: pip install reluscope[cluster], "
                              "or write .csv") from None
        table = pa.table({c: [row.get(c) for row in rows] for c in columns})
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path
    import io

    from .._io import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
