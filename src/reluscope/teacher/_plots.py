"""Figures: best-match correlation per teacher node (FC), mimicry per level (LC)."""

from __future__ import annotations

import numpy as np

from ._fc import FCResult
from ._mimicry import LCResult


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fc(result: FCResult):
    """Left: each teacher node's best correlation, sorted, per layer. Right: mean per epoch."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, best in enumerate(result.best):
        v = np.sort(np.asarray(best))[::-1]
        a.plot(np.arange(1, len(v) + 1), v, marker="o", ms=3, label=f"layer {i + 1} (mean {v.mean():.3f})")
    a.axhline(0.9, color="gray", ls=":", lw=1)
    a.axhline(0.95, color="gray", ls="--", lw=1)
    a.set(xlabel="teacher node (sorted)", ylabel="max correlation with a student node",
          title="best match per teacher node", ylim=(min(0.0, a.get_ylim()[0]), 1.02))
    a.legend(fontsize=8)
    epochs = [h["epoch"] for h in result.history]
    for i in range(len(result.best)):
        b.plot(epochs, [h["mean_best"][i] for h in result.history], label=f"layer {i + 1}")
    b.set(xlabel="epoch", ylabel="mean best-match correlation", title="during training")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_lc(result: LCResult):
    """Per level: histogram of the best node's correlation with 1[z_α = a], and its trajectory."""
    plt = _plt()
    n = len(result.levels)
    fig, axes = plt.subplots(2, max(n, 1), figsize=(4 * max(n, 1), 6), squeeze=False)
    for i, lv in enumerate(result.levels):
        v = lv.correlation[np.isfinite(lv.correlation)]
        ax = axes[0, i]
        ax.hist(v, bins=20, range=(-0.2, 1), color="C0")
        ax.axvline(0.9, color="gray", ls=":")
        ax.set(title=f"level {lv.level}: best node per (α, a)", xlabel="correlation with 1[z_α = a]",
               ylabel="count")
        ax = axes[1, i]
        epochs = [h["epoch"] for h in result.history]
        for key, label in [("mean_correlation", "mean correlation"), ("matched_0.9", "matched ≥ 0.9"),
                           ("mean_selectivity", "mean selectivity")]:
            ax.plot(epochs, [h["levels"][i][key] for h in result.history], label=label)
        ax.set(xlabel="epoch", ylim=(-0.05, 1.05), title=f"level {lv.level} during training")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
