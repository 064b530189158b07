"""Figures of the shadow analyses (matplotlib, Agg backend)."""

from __future__ import annotations

import math

from .._style import ARMS, BOUND, LEGEND_SIZE, RANDOM, THRESHOLD, TRAINED, log_ticks
from .._style import OFFSETS as _COLORS
from .._style import panels as _panels
from .._style import pyplot as _plt
from .._style import subplots as _subplots


def _means(xs, ys):
    groups: dict[float, list[float]] = {}
    for x, y in zip(xs, ys):
        groups.setdefault(x, []).append(y)
    keys = sorted(groups)
    return keys, [sum(groups[k]) / len(groups[k]) for k in keys]


def plot_theorem1(res):
    """Relative error against k/t on log-log axes, one colour per offset rule, with the fit."""
    fig, axes = _subplots(1, 1, width=6.0, panel_height=4.0)
    ax = axes[0, 0]
    ratios = [r["ratio"] for r in res.runs]
    for rule in res.slopes:
        errs = [r["errors"][rule] for r in res.runs]
        ax.scatter(ratios, errs, s=10, alpha=0.45, color=_COLORS[rule])
        kx, ky = _means(ratios, errs)
        ax.plot(kx, ky, "-o", ms=3, color=_COLORS[rule], label=f"{rule} (slope {res.slopes[rule]:.2f})")
    b, c = res.slopes.get("best"), res.intercepts.get("best")
    if b is not None and not math.isnan(b):
        lo, hi = min(ratios), max(ratios)
        ax.plot([lo, hi], [math.exp(c) * lo ** b, math.exp(c) * hi ** b], "--", color=_COLORS["best"], lw=1)
        ax.plot([lo, hi], [math.exp(c) * lo ** b, math.exp(c) * lo ** b * hi / lo], ":", color=THRESHOLD,
                lw=1.2, label="slope 1 (theory)")
    ax.set(xscale="log", yscale="log", xlabel="k / t", ylabel="‖h̃ − h‖² / ‖h‖²",
           title="Theorem 1: one Gaussian layer")
    ax.grid(alpha=0.3, which="both")
    log_ticks(ax)
    ax.legend(fontsize=LEGEND_SIZE)
    return fig


def plot_multilayer(results):
    """Relative error ‖h̃ − h‖²/‖h‖² against k_top / k_below for 2 and 3 layers, per offset rule, beside
    the proof's bound 16 (k_top/k_below) ln n_top and h̃ = 0 (error 1); the band above the saturation
    level is shaded (those runs are left out of the slope fit). One panel per sweep, titled with
    what it holds fixed (`MultilayerResult.design`)."""
    fig, axes = _panels(len(results), panel_height=3.8)
    for ax, res in zip(axes, results):
        ratios = [r["ratio"] for r in res.runs]
        for rule in res.slopes:
            kx, ky = _means(ratios, [r["relative"][rule] for r in res.runs])
            s, n = res.slopes[rule], res.fitted.get(rule, 0)
            fit = f"slope {s:.2f} over {n} runs" if not math.isnan(s) else "no slope: saturated"
            ax.plot(kx, ky, "-o", ms=3, color=_COLORS[rule], label=f"{rule} ({fit})")
        if res.runs and "linear" in res.runs[0]:
            kx, ky = _means(ratios, [r["linear"] for r in res.runs])
            ax.plot(kx, ky, ":", color=_COLORS["best"], lw=1, label="before threshold (linear)")
        if res.runs and "bound" in res.runs[0]:
            kx, ky = _means(ratios, [r["bound"] for r in res.runs])
            ax.plot(kx, ky, "-.", color=BOUND, lw=1.6, label="bound 16 (k/t) ln n")  # theory rule: solid
        ax.axhline(1.0, ls="--", color=THRESHOLD, lw=1, label="h̃ = 0")
        sat = res.config.get("saturation")
        if sat:
            ax.axhspan(sat, 1.0, color=THRESHOLD, alpha=0.06, lw=0)
        top = "k₂/k₁" if res.depth == 2 else "k₃/k₂"
        design = getattr(res, "design", "")
        ax.set(xscale="log", yscale="log", xlabel=top, ylabel="‖h̃ − h‖² / ‖h‖²",
               title=f"Theorem 3.{res.depth - 1}: {res.depth} layers" + (f"\n{design}" if design else ""))
        ax.grid(alpha=0.3, which="both")
        log_ticks(ax)
        ax.legend(fontsize=LEGEND_SIZE)
    return fig


def _scaled(img):
    """An image (C, H, W) min-max scaled to [0, 1] (each reconstruction has its own scale)."""
    img = img.detach().float().cpu()
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else img * 0


def plot_reconstruction(rec, max_images: int = 6):
    """Grid: original, then per layer the reconstruction with trained and with random weights.

    Drawn as one mosaic image (one `imshow`), which keeps large grids fast.
    """
    import torch

    plt = _plt()
    n = min(max_images, rec.count)
    columns = [("original", rec.originals)]
    for lay in rec.layers:
        columns += [(f"{lay.label}\ntrained", rec.images[("trained", lay.layer)]),
                    (f"{lay.label}\nrandom", rec.images[("random", lay.layer)])]
    c, h, w = rec.originals.shape[1:]
    pad = max(1, h // 8)
    mosaic = torch.ones(c, n * (h + pad) + pad, len(columns) * (w + pad) + pad)
    for j, (_, imgs) in enumerate(columns):
        for i in range(n):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            # Reconstructions of a flat-input MLP come back flat: draw them in the image's shape.
            mosaic[:, top:top + h, left:left + w] = _scaled(imgs[i].reshape(c, h, w))
    fig, ax = plt.subplots(figsize=(1.0 * len(columns) + 0.5, 1.0 * n + 0.6))
    img = mosaic[0] if c == 1 else mosaic.permute(1, 2, 0)
    ax.imshow(img.numpy(), cmap="gray" if c == 1 else None, interpolation="nearest")
    ax.set_xticks([pad + j * (w + pad) + w / 2 for j in range(len(columns))])
    ax.set_xticklabels([t for t, _ in columns], fontsize=LEGEND_SIZE)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    return fig


def plot_reconstruction_errors(rec, kind: str = "mean"):
    """Relative error per layer in input space and hidden space, trained vs random."""
    fig, ((a, b),) = _subplots(1, 2, panel_height=3.2)
    xs = [lay.layer for lay in rec.layers]
    for ax, measure in zip((a, b), ("input", "hidden")):
        for weights, style, color in (("trained", "-o", TRAINED), ("random", "--s", RANDOM)):
            ys = [lay.errors[weights][kind][measure] for lay in rec.layers]
            ax.plot(xs, ys, style, ms=4, color=color, label=weights)
        ax.set(xlabel="layer" if rec.chain else "ReLU node", ylabel="relative error",
               title=f"{measure} space ({kind})", xticks=xs)
        if not rec.chain:
            ax.set_xticklabels([lay.label for lay in rec.layers], rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LEGEND_SIZE)
    return fig


def plot_shadow_curves(res):
    """Test error against epoch per arm (mean ± std over seeds), one panel per budget."""
    budgets = sorted({a.budget for a in res.arms})
    fig, axes = _panels(len(budgets), panel_height=3.3)
    colors = ARMS
    for ax, b in zip(axes, budgets):
        for a in (a for a in res.arms if a.budget == b):
            ep = a.curve_epochs
            lo = [m - s for m, s in zip(a.curve_mean, a.curve_std)]
            hi = [m + s for m, s in zip(a.curve_mean, a.curve_std)]
            ax.plot(ep, a.curve_mean, color=colors.get(a.arm), label=f"{a.arm} ({a.mean:.3f})")
            ax.fill_between(ep, lo, hi, color=colors.get(a.arm), alpha=0.15)
        # log-spaced evaluations: a log epoch axis shows the early fall and the long plateau alike
        xscale = "log" if max(a.epochs for a in res.arms if a.budget == b) > 30 else "linear"
        ax.set(xlabel="epoch", ylabel="test error", title=f"{b} labels", yscale="log", xscale=xscale)
        ax.grid(alpha=0.3, which="both")
        log_ticks(ax)
        ax.legend(fontsize=LEGEND_SIZE)
    return fig
