"""Results as pandas DataFrames. pandas is optional: it is imported here only, when a table is asked for.

Every public result type has `to_frame()`: one row per layer, node, sample, run or arm,
built as row dicts and handed to `frame`. Column names carry their unit where there is
one (`time_s`, `error_rel`). `to_frame(obj)` also takes a list of results (e.g. what
`lemma_checks` or `teacher.check_all` return) or a list of row dicts.

>>> from reluscope.report._registry import Claim
>>> to_frame([Claim("a", "1.0", True), Claim("b", "2.0", None)]).shape
(2, 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DependencyError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

MISSING_PANDAS = "to_frame() needs pandas: pip install 'reluscope[frames]'"


def pandas():
    """The pandas module, or a one-line `DependencyError` naming the pip command."""
    try:
        import pandas as pd
    except ImportError:
        raise DependencyError(MISSING_PANDAS) from None
    return pd


def frame(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    """A DataFrame with one row per dict of `rows` (columns in order of first appearance,
    or `columns`); numpy scalars and 0-d arrays become Python numbers."""
    pd = pandas()
    rows = [{k: _scalar(v) for k, v in r.items()} for r in rows]
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    return pd.DataFrame(rows, columns=columns)


def to_frame(obj) -> pd.DataFrame:
    """The table of a result, of a list of results (rows stacked), or of a list of row dicts."""
    if hasattr(obj, "to_frame"):
        return obj.to_frame()
    if type(obj).__name__ == "DataFrame":
        return obj
    if isinstance(obj, Mapping):
        return frame([obj])
    if isinstance(obj, (list, tuple)):
        if all(isinstance(o, Mapping) for o in obj):
            return frame(obj)
        parts = [to_frame(o) for o in obj]
        return pandas().concat(parts, ignore_index=True) if parts else frame([])
    raise ConfigError(f"{type(obj).__name__} has no table; pass a reluscope result or a list of them")


def scalars(d: Mapping[str, Any], prefix: str = "", sep: str = "_") -> dict:
    """The scalar entries of a (nested) dict, nested keys joined with `sep`; lists dropped.

    >>> scalars({"a": 1, "b": {"c": 2.0, "d": [1, 2]}})
    {'a': 1, 'b_c': 2.0}
    """
    out = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(scalars(v, key, sep))
        elif v is None or isinstance(v, (bool, int, float, str)) or _is_np_scalar(v):
            out[key] = _scalar(v)
    return out


def _is_np_scalar(v) -> bool:
    return type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0


def _scalar(v):
    if _is_np_scalar(v) or (type(v).__module__ == "torch" and getattr(v, "ndim", 1) == 0):
        v = v.item()
    return v


def log10(x: float) -> float:
    """log10, NaN for non-positive values (a table cell, never an error)."""
    return math.log10(x) if x > 0 else float("nan")
