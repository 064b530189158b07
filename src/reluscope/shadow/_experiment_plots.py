"""Figures of the SHADOW experiment: the paper's "dropout vs dropout+shadow" curves, error
against label budget, and the sweeps of the open choices. Each returns a matplotlib figure."""

from __future__ import annotations

from .._style import ARMS as COLORS
from .._style import LEGEND_SIZE, log_ticks
from .._style import panels as _panels
from .._style import subplots as _subplots


def plot_dropout_vs_shadow(res, budget: int | None = None, title: str = ""):
    """Test error against epoch at one budget (default: the largest), mean ± std over seeds.

    Dropout and dropout+SHADOW (the paper's figure) are solid; baseline and SHADOW dashed.

    Arguments:
        res: a `ShadowTrainResult`.
        budget: the label budget to show (a number of labels as in `ArmResult.budget`).
    """
    budget = max(a.budget for a in res.arms) if budget is None else budget
    fig, axes = _subplots(1, 1, width=6.0, panel_height=3.6)
    ax = axes[0, 0]
    for a in (a for a in res.arms if a.budget == budget):
        epochs = a.curve_epochs
        style = "-" if "dropout" in a.arm else "--"
        ax.plot(epochs, a.curve_mean, style, color=COLORS.get(a.arm),
                label=f"{a.arm}: {a.mean:.3f} ± {a.std:.3f}")
        lo = [m - s for m, s in zip(a.curve_mean, a.curve_std)]
        hi = [m + s for m, s in zip(a.curve_mean, a.curve_std)]
        ax.fill_between(epochs, lo, hi, color=COLORS.get(a.arm), alpha=0.12, linewidth=0)
    ax.set(xlabel="epoch", ylabel="test error", title=title or f"{budget} labels: dropout vs dropout+shadow")
    if a.curve_epochs[-1] > 30:
        ax.set_xscale("log")
    ax.grid(alpha=0.3, which="both")
    log_ticks(ax)
    ax.legend(fontsize=LEGEND_SIZE)
    return fig


def plot_error_vs_budget(res, title: str = ""):
    """Final test error (mean ± std over seeds) against the number of labels, one line per arm."""
    fig, axes = _subplots(1, 1, width=6.0, panel_height=3.6)
    ax = axes[0, 0]
    arms = list(dict.fromkeys(a.arm for a in res.arms))
    for k, name in enumerate(arms):
        rows = sorted((a for a in res.arms if a.arm == name), key=lambda a: a.budget)
        # A small horizontal offset per arm keeps the error bars apart.
        xs = [a.budget * (1 + 0.03 * (k - len(arms) / 2)) for a in rows]
        ax.errorbar(xs, [a.mean for a in rows], yerr=[a.std for a in rows], marker="o", capsize=3,
                    color=COLORS.get(name), label=name)
    ax.set(xscale="log", xlabel="labelled training samples", ylabel="test error",
           title=title or "error vs labels")
    ax.grid(alpha=0.3, which="both")
    log_ticks(ax)
    ax.legend(fontsize=LEGEND_SIZE)
    return fig


def plot_sweeps(res, title: str = ""):
    """The validation error of every sweep setting (mean ± std over seeds), one panel per option,
    the defaults in each panel and the baseline as a horizontal band; None without sweeps."""
    points = [p for p in res.sweeps if "val_errors" in p]  # older files scored sweeps on test
    if not points:
        return None
    base = next((p for p in points if p["kind"] == "baseline"), None)
    default = next((p for p in points if p["kind"] == "default"), None)
    kinds = list(dict.fromkeys(p["kind"] for p in points if p["kind"] not in ("baseline", "default")))
    if not kinds:
        return None
    fig, axes = _panels(len(kinds), panel_height=3.3)
    for ax, kind in zip(axes, kinds):
        pts = ([default] if default else []) + [p for p in points if p["kind"] == kind]
        labels = ["defaults" if p["kind"] == "default" else str(p["value"]) for p in pts]
        ax.errorbar(range(len(pts)), [p["mean"] for p in pts], yerr=[p["std"] for p in pts], marker="o",
                    capsize=3, linestyle="none", color=COLORS["shadow"], label="shadow")
        if base is not None:
            ax.axhline(base["mean"], color=COLORS["baseline"], label=f"baseline {base['mean']:.3f}")
            ax.axhspan(base["mean"] - base["std"], base["mean"] + base["std"], color=COLORS["baseline"],
                       alpha=0.15)
        ax.set_xticks(range(len(pts)), labels)
        ax.set(xlabel=kind.replace("_", " "), ylabel="validation error",
               title=title or f"{points[0]['budget']} labels")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LEGEND_SIZE)
    return fig
