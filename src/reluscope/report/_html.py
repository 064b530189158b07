"""Small HTML helpers: embedded figures and tables, escaped."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any


def figure_html(fig, caption: str = "", alt: str = "") -> str:
    """Render a matplotlib figure as an embedded PNG <figure> and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    alt = html.escape(alt or caption or "figure")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'


def fmt(value: Any) -> str:
    """Format a number compactly for tables; other values as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "–"
        return f"{value:.4g}"
    return str(value)


def table_html(header: Sequence[str] | None, rows: Iterable[Sequence[Any]]) -> str:
    """An escaped HTML table; `header=None` for a plain key/value table."""
    head = ""
    if header:
        head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    # the wrapper scrolls a wide table (many columns) inside the page instead of widening it
    return f"<div class='table'><table>{head}<tbody>{body}</tbody></table></div>"


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"
