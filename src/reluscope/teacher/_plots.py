"""Figures: best-match correlation per teacher node (FC), mimicry per level (LC)."""

from __future__ import annotations

import numpy as np

from .._style import LEGEND_SIZE, THRESHOLD, TRAINED, depth_colors
from .._style import subplots as _subplots
from ._fc import FCResult
from ._mimicry import LCResult


def plot_fc(result: FCResult):
    """Left: each teacher node's best correlation, sorted, per layer. Right: mean per epoch.
    Layers are coloured by depth (dark = lowest). Solid: the protocol's metric; dashed: the same
    on held-out inputs (when recorded)."""
    fig, ((a, b),) = _subplots(1, 2, panel_height=3.4)
    colors = depth_colors(len(result.best))
    for i, best in enumerate(result.best):
        v = np.sort(np.asarray(best))[::-1]
        a.plot(np.arange(1, len(v) + 1), v, marker="o", ms=3, color=colors[i],
               label=f"layer {i + 1} (mean {v.mean():.3f})")
        if i < len(result.best_heldout):
            h = np.sort(np.asarray(result.best_heldout[i]))[::-1]
            a.plot(np.arange(1, len(h) + 1), h, ls="--", lw=1, color=colors[i],
                   label=f"held-out (mean {h.mean():.3f})")
    a.axhline(0.9, color=THRESHOLD, ls=":", lw=1)
    a.axhline(0.95, color=THRESHOLD, ls="--", lw=1)
    a.set(xlabel="teacher node (sorted)", ylabel="max correlation\nwith a student node",
          title="best match per teacher node", ylim=(min(0.0, a.get_ylim()[0]), 1.02))
    a.legend(fontsize=LEGEND_SIZE)
    epochs = [h["epoch"] for h in result.history]
    for i in range(len(result.best)):
        b.plot(epochs, [h["mean_best"][i] for h in result.history], color=colors[i], label=f"layer {i + 1}")
        if all("mean_best_heldout" in h for h in result.history):
            b.plot(epochs, [h["mean_best_heldout"][i] for h in result.history], color=colors[i], ls="--",
                   lw=1)
    b.set(xlabel="epoch", ylabel="mean best-match correlation", title="during training (dashed: held-out)")
    b.legend(fontsize=LEGEND_SIZE)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return fig


def plot_lc(result: LCResult):
    """Per level (one row each): histogram of the best node's correlation with 1[z_α = a], and
    its trajectory during training."""
    n = len(result.levels)
    from matplotlib.ticker import MaxNLocator

    fig, axes = _subplots(max(n, 1), 2, panel_height=2.9)
    for i, lv in enumerate(result.levels):
        v = lv.correlation[np.isfinite(lv.correlation)]
        ax = axes[i, 0]
        ax.hist(v, bins=20, range=(-0.2, 1), color=TRAINED)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axvline(0.9, color=THRESHOLD, ls=":")
        ax.set(title=f"level {lv.level}: best node per (α, a)", xlabel="correlation with 1[z_α = a]",
               ylabel="count")
        ax = axes[i, 1]
        epochs = [h["epoch"] for h in result.history]
        for key, label in [("mean_correlation", "mean correlation"), ("matched_0.9", "matched ≥ 0.9"),
                           ("mean_selectivity", "mean selectivity")]:
            ax.plot(epochs, [h["levels"][i][key] for h in result.history], label=label)
        ax.set(xlabel="epoch", ylim=(-0.05, 1.05), title=f"level {lv.level} during training")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=LEGEND_SIZE)
        ax.grid(alpha=0.3)
    return fig
