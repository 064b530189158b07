"""Results that display themselves in Jupyter: the `to_frame()` table plus the analysis's figure.

A result class inherits `Tabular` (one line) and defines `to_frame()`; where its report
section has a figure it also defines `_figures()`, yielding `(matplotlib figure, caption)`.
Classes with a flat `to_dict()` may keep the default `to_frame()`: one row of its scalars.
"""

from __future__ import annotations

import html

from ._frames import frame, scalars
from .errors import ReluscopeError

MAX_ROWS = 60  # longer tables show their head and tail in the notebook


class Tabular:
    """Mixin giving `to_frame()` (default: one row of the scalars of `to_dict()`) and `_repr_html_`."""

    def to_frame(self):
        """One row: the scalar entries of `to_dict()` (nested keys joined with `_`)."""
        return frame([scalars(self.to_dict())])

    def _figures(self):
        """`(figure, caption)` pairs shown under the table; none by default."""
        return ()

    def _repr_html_(self) -> str | None:
        return repr_html(self)


def repr_html(result, max_rows: int = MAX_ROWS) -> str | None:
    """The HTML of `result` in a notebook: its class name, its table, its figures (embedded PNG).

    None (Jupyter then shows the plain repr) when pandas is missing. A figure that cannot
    be drawn is left out: the table is the result, the figure an illustration.
    """
    try:
        df = result.to_frame()
    except ReluscopeError:
        return None
    parts = [f"<div class='reluscope-result'><p><strong>{html.escape(type(result).__name__)}</strong> "
             f"({len(df)} rows)</p>", df.to_html(index=False, max_rows=max_rows, border=0)]
    parts += _figure_parts(result)
    return "".join(parts) + "</div>"


def _figure_parts(result) -> list[str]:
    from .report._html import figure_html

    out = []
    try:
        for fig, caption in result._figures():
            out.append(figure_html(fig, caption))
    except Exception:  # noqa: BLE001 - a figure is optional in a notebook view
        pass
    return out
