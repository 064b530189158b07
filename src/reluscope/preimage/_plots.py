"""The slide's figure: histogram of positive outputs, split by pre-image kind."""

from __future__ import annotations

import numpy as np

from .._style import KINDS as _COLORS
from .._style import LEGEND_SIZE, THRESHOLD
from .._style import panels as _panels
from ._classify import KINDS


def positives_histogram(panels, n_input: int, bins: int = 30, figsize=None):
    """One panel per `(title, BatchResult)`: stacked histogram of #positive outputs by kind,
    two panels a row (so four layers make a legible 2 x 2 grid).

    Arguments:
        panels: list of `(title, BatchResult)`.
        n_input: the layer's input dimension, marked by a dashed line (above it a singleton
            is possible from the rank alone).
        bins: number of bins over the common range.
        figsize: figure size in inches (default: the report's width, 3.3 in per row).

    Returns:
        A matplotlib figure.
    """
    from matplotlib.ticker import MaxNLocator

    fig, axes = _panels(len(panels), panel_height=3.3)
    if figsize is not None:
        fig.set_size_inches(figsize)
    for ax, (title, batch) in zip(axes, panels):
        pos, kinds = batch.n_positive, np.array(batch.kinds)
        lo, hi = min(pos.min(), n_input) - 10, max(pos.max(), n_input) + 10
        edges = np.linspace(lo, hi, bins + 1)
        data = [pos[kinds == k] for k in KINDS if np.any(kinds == k)]
        labels = [f"{k} ({int(np.sum(kinds == k))})" for k in KINDS if np.any(kinds == k)]
        colors = [_COLORS[k] for k in KINDS if np.any(kinds == k)]
        ax.hist(data, bins=edges, stacked=True, label=labels, color=colors)
        ax.axvline(n_input, color=THRESHOLD, ls="--", lw=1, label=f"n = {n_input} inputs")
        ax.set(xlabel="# positive outputs", ylabel="# samples", title=title)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=LEGEND_SIZE)
        ax.grid(alpha=0.3)
    return fig
