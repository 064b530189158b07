"""Figures: singular values against their index, median over samples with a band."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._style import LEGEND_SIZE, MAX_WIDTH, depth_colors, log_ticks
from .._style import subplots as _subplots
from ._spectra import JacobianSpectra, LayerSpectrum


def is_graph(spec: JacobianSpectra) -> bool:
    """Spectra of a graph's nodes (stage `out`) rather than of a chain's layers."""
    return any(s.output.stage == "out" for s in spec)


def relu_before_after(spec: JacobianSpectra) -> list[tuple[int, int]]:
    """(before, after) output indices of every ReLU: on a chain a layer's `pre` and `post`,
    on a graph a ReLU node's input and the node itself (where both were analysed)."""
    if not is_graph(spec):
        return [(s.output.index - 1, s.output.index) for s in spec
                if s.output.stage == "post" and s.output.activation == "relu"]
    by_name = {s.output.name: s.output for s in spec}
    return [(by_name[s.output.inputs[0]].index, s.output.index) for s in spec
            if s.output.activation == "relu" and s.output.inputs and s.output.inputs[0] in by_name]


def relu_pairs(spec: JacobianSpectra, depths: int = 2) -> list[int]:
    """Output indices of `depths` ReLU layers (pre and post), spread over the depth.

    For the CIFAR CNN and two depths these are the paper's layers 3, 4, 9 and 10. On a
    graph, the ReLU nodes take the layers' place and the node each reads is "pre".
    """
    pairs = relu_before_after(spec)
    if not pairs:
        return []
    if len(pairs) >= 5 and depths == 2:
        chosen = [pairs[1], pairs[4]]  # paper: the 2nd and 5th convolutions
    else:
        picks = np.unique(np.linspace(0, len(pairs) - 1, min(depths, len(pairs))).round().astype(int))
        chosen = [pairs[i] for i in picks]
    return [i for pair in chosen for i in pair]


def plot_spectra(spec: JacobianSpectra, indices: Sequence[int] | None = None, ax=None,
                 title: str = "", band: bool = True, labels: dict[int, str] | None = None):
    """Singular values (log scale) against index for the outputs `indices` (default all).

    Each line is the median over samples; the band spans the samples' minimum to maximum.
    Values reported as 0 (below the numerical resolution) are left out. `labels` names
    outputs by index (default: layer or node, and stage). Colours run from shallow (dark) to
    deep (light); the legend sits beside the axes so it never hides a tail.

    Returns:
        The matplotlib figure.
    """
    if ax is None:
        fig, axes = _subplots(1, 1, width=MAX_WIDTH, panel_height=3.9)
        ax = axes[0, 0]
    else:
        fig = ax.figure
    chosen = [s for s in spec if indices is None or s.output.index in indices]
    colors = depth_colors(len(chosen))
    for s, color in zip(chosen, colors):
        med, lo, hi = _bands(s)
        idx = np.arange(1, len(med) + 1)
        ax.plot(idx, med, color=color, lw=1.4, label=(labels or {}).get(s.output.index) or _label(s))
        if band and s.singular_values.shape[0] > 1:
            ax.fill_between(idx, lo, hi, color=color, alpha=0.2, lw=0)
    ax.set(yscale="log", xlabel="index of singular value", ylabel="singular value", title=title)
    ax.grid(alpha=0.3, which="both")
    log_ticks(ax)
    # beside the axes, not over the tails
    ax.legend(fontsize=LEGEND_SIZE if len(chosen) <= 8 else 7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _bands(s: LayerSpectrum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median (only where every sample is nonzero, so no jump where ranks differ), min, max."""
    v = np.where(s.singular_values > 0, s.singular_values, np.nan)
    keep = ~np.all(np.isnan(v), axis=0)
    v = v[:, keep]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.where(np.isnan(v).any(0), np.nan, np.nanmedian(v, 0))
        return med, np.nanmin(v, 0), np.nanmax(v, 0)


def _label(s: LayerSpectrum) -> str:
    o = s.output
    if o.stage == "out":
        return f"node {o.index}: {o.name}"
    stage = "before ReLU" if o.stage == "pre" and o.activation == "relu" else (
        "after ReLU" if o.stage == "post" else o.stage)
    return f"layer {o.index} (module {o.name}, {stage})"


def effect_of_relu_figure(spec: JacobianSpectra, depths: int = 2):
    """The paper's "effect of ReLU": spectra before and after a ReLU at `depths` depths."""
    idx = relu_pairs(spec, depths)
    labels = None
    if is_graph(spec):
        names = {s.output.index: s.output.name for s in spec}
        labels = {}
        for before, after in zip(idx[::2], idx[1::2]):
            labels[before] = f"{names[before]} (before ReLU {names[after]})"
            labels[after] = f"{names[after]} (after ReLU)"
    return plot_spectra(spec, idx, title="Effect of ReLU", labels=labels)


def decay_indices(spec: JacobianSpectra, most: int = 12) -> list[int] | None:
    """Outputs for the decay figure: all of a chain's (None); on a graph with more than
    `most` nodes, the ReLU nodes and the last node, at most `most` spread over the depth."""
    if not is_graph(spec) or len(spec) <= most:
        return None
    keep = [s.output.index for s in spec if s.output.activation == "relu"]
    keep = keep + [spec.layers[-1].output.index]
    if len(keep) > most:
        keep = [keep[i] for i in np.unique(np.linspace(0, len(keep) - 1, most).round().astype(int))]
    return keep


def decay_figure(spec: JacobianSpectra, indices: Sequence[int] | None = None):
    """The paper's "decay over layers": every output's spectrum (or `indices`; on a large
    graph by default those of `decay_indices`)."""
    if indices is None:
        indices = decay_indices(spec)
    return plot_spectra(spec, indices, title="Decay over layers", band=True)


def summary_rows(spec: JacobianSpectra) -> list[tuple]:
    """One table row per output: label, shape, median rank, σ_max, σ_min>0, condition, active."""
    rows = []
    for s in spec:
        sv = s.singular_values
        smin = s.sigma_min  # lanczos: an estimate or bound (method column says so)
        active = "–" if s.active is None else f"{np.median(s.active):.0f}"
        rows.append((s.output.index, s.output.name, s.output.stage, "×".join(map(str, s.output.shape)),
                     int(np.median(s.rank)), float(np.median(sv[:, 0])), float(np.nanmedian(smin)),
                     float(np.nanmedian(s.condition)), active, "/".join(sorted(set(s.method)))))
    return rows


SUMMARY_HEADER = ["#", "layer", "stage", "shape", "rank", "σ_max", "σ_min (nonzero)", "condition",
                  "active units", "method"]


def summary_header(spec: JacobianSpectra) -> list[str]:
    """`SUMMARY_HEADER`, with `node` for `layer` on a graph."""
    return [("node" if h == "layer" and is_graph(spec) else h) for h in SUMMARY_HEADER]
