"""The slide's figure: histogram of positive outputs, split by pre-image kind."""

from __future__ import annotations

import numpy as np

from ._classify import KINDS

_COLORS = {"singleton": "#4a7cc9", "compact": "#52a35c", "unbounded": "#d9822b", "degenerate": "#999999"}


def positives_histogram(panels, n_input: int, bins: int = 30, figsize=None):
    """One panel per `(title, BatchResult)`: stacked histogram of #positive outputs by kind.

    Arguments:
        panels: list of `(title, BatchResult)`.
        n_input: the layer's input dimension, marked by a dashed line (above it a singleton
            is possible from the rank alone).
        bins: number of bins over the common range.

    Returns:
        A matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=figsize or (4.6 * len(panels), 3.3), squeeze=False)
    for ax, (title, batch) in zip(axes[0], panels):
        pos, kinds = batch.n_positive, np.array(batch.kinds)
        lo, hi = min(pos.min(), n_input) - 10, max(pos.max(), n_input) + 10
        edges = np.linspace(lo, hi, bins + 1)
        data = [pos[kinds == k] for k in KINDS if np.any(kinds == k)]
        labels = [f"{k} ({int(np.sum(kinds == k))})" for k in KINDS if np.any(kinds == k)]
        colors = [_COLORS[k] for k in KINDS if np.any(kinds == k)]
        ax.hist(data, bins=edges, stacked=True, label=labels, color=colors)
        ax.axvline(n_input, color="k", ls="--", lw=1)
        ax.text(n_input, ax.get_ylim()[1] * 0.95, f" n = {n_input}", va="top", fontsize=8)
        ax.set(xlabel="# positive outputs", ylabel="# samples", title=title)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
