"""Figures: entry histograms with the fitted Gaussian, spectra against MP and a Gaussian
matrix, the power-law tail, and conv operator singular values; trained vs initial."""

from __future__ import annotations

import math

import numpy as np

from .._style import INITIAL as INIT
from .._style import LEGEND_SIZE, SPIKE, THRESHOLD, TITLE_SIZE, TRAINED, log_ticks
from .._style import REFERENCE as REF
from .._style import pyplot as _plt
from .._style import subplots as _subplots
from ._analyze import LayerSpectrum, SpectrumResult
from ._mp import mp_density


def layer_figure(ls: LayerSpectrum, init: LayerSpectrum | None = None):
    """Six panels for one layer: (a) weights, (b) bias, (c) eigenvalues vs MP, (d) sorted
    singular values vs a Gaussian matrix, (e) tail with power-law fit, (f) conv operator
    singular values (or the initial layer's eigenvalues vs MP). Initial layer in grey; three
    rows of two panels, so the figure fits the report at its natural size."""
    fig, axes = _subplots(3, 2, panel_height=3.0)
    (a, b), (c, d), (e, f) = axes
    _hist(a, ls.weight_values, ls.weight, "weights", init.weight_values if init else None)
    if ls.bias_values is not None and ls.bias_values.size > 1:
        _hist(b, ls.bias_values, ls.bias, "bias",
              init.bias_values if init is not None and init.bias_values is not None else None)
    else:
        b.text(0.5, 0.5, "no bias", ha="center", va="center", transform=b.transAxes)
        b.set_axis_off()
    _esd(c, ls, f"(c) eigenvalues of W W^T/n vs MP ({ls.verdict.label})")
    _sorted_sv(d, ls, init)
    _tail(e, ls, init)
    if ls.conv is not None:
        _conv(f, ls, init)
    elif init is not None:
        _esd(f, init, f"(f) at initialisation vs MP ({init.verdict.label})", color=INIT)
    else:
        f.set_axis_off()
    fig.suptitle(f"layer {ls.name} ({ls.kind}, matrix {ls.shape[0]}x{ls.shape[1]}): {ls.verdict.label}")
    return fig


def summary_figure(result: SpectrumResult):
    """Per layer: outliers above the MP edge and tail alpha, trained vs initial."""
    names = [ls.name for ls in result.layers]
    x = np.arange(len(names))
    fig, ((a, b),) = _subplots(1, 2, panel_height=3.2)
    w = 0.38 if result.init is not None else 0.7
    a.bar(x - (w / 2 if result.init else 0), [ls.mp.n_outliers for ls in result.layers], w,
          color=TRAINED, label="trained")
    b.bar(x - (w / 2 if result.init else 0), [ls.tail.alpha for ls in result.layers], w, color=TRAINED,
          label="trained")
    if result.init is not None:
        a.bar(x + w / 2, [ls.mp.n_outliers for ls in result.init], w, color=INIT, label="initial")
        b.bar(x + w / 2, [ls.tail.alpha for ls in result.init], w, color=INIT, label="initial")
    b.axhline(4, color=REF, lw=1, ls="--", label="alpha = 4")
    a.set(ylabel="outliers above MP edge\n+ Tracy–Widom margin", xticks=x, xticklabels=names, xlabel="layer")
    a.set_ylim(bottom=0, top=max(1, a.get_ylim()[1]))
    a.yaxis.get_major_locator().set_params(integer=True)
    b.set(ylabel="power-law tail alpha", xticks=x, xticklabels=names, xlabel="layer")
    b.set_ylim(bottom=0)
    for ax in (a, b):
        ax.legend(fontsize=LEGEND_SIZE)
        ax.grid(alpha=0.3)
        if len(names) > 6:  # many layers: slanted names stay apart
            ax.tick_params(axis="x", labelrotation=45)
            for t in ax.get_xticklabels():
                t.set_ha("right")
    return fig


def save_figures(result: SpectrumResult, out_dir) -> list:
    """Write `summary.png` and one `layer-<name>.png` per layer into `out_dir`; returns paths."""
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    paths = []
    figs = [("summary.png", summary_figure(result))]
    for i, ls in enumerate(result.layers):
        init = result.init[i] if result.init is not None else None
        figs.append((f"layer-{_safe(ls.name)}.png", layer_figure(ls, init)))
    for name, fig in figs:
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(out / name)
    return paths


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "layer"


def _ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=5)


def _hist(ax, values, stats, what, init_values=None):
    bins = min(80, max(10, int(math.sqrt(values.size))))
    ax.hist(values, bins=bins, density=True, color=TRAINED, alpha=0.75, label="trained")
    if init_values is not None:
        ax.hist(init_values, bins=bins, density=True, histtype="step", color=INIT, lw=1.5, label="initial")
    if stats.std > 0:
        x = np.linspace(values.min(), values.max(), 300)
        pdf = np.exp(-0.5 * ((x - stats.mean) / stats.std) ** 2) / (stats.std * math.sqrt(2 * math.pi))
        ax.plot(x, pdf, color=REF, lw=1.5, label="fitted Gaussian")
    ax.set_title(f"({'a' if what == 'weights' else 'b'}) {what}: kurtosis {stats.excess_kurtosis:.2f}, "
                 f"KS {stats.ks:.3f}", fontsize=TITLE_SIZE)
    ax.xaxis.set_major_locator(_ticks())  # short decimal labels stay apart
    ax.legend(fontsize=LEGEND_SIZE)


def _esd(ax, ls, title, color=TRAINED):
    eig = ls.eigenvalues
    mp = ls.mp
    top = max(mp.threshold * 1.6, float(np.quantile(eig, 0.98)) * 1.1)
    shown = eig[eig <= top]
    ax.hist(shown, bins=min(80, max(10, eig.size // 4)), density=True, color=color, alpha=0.7,
            label=f"{eig.size} eigenvalues")
    x = np.linspace(0, top, 400)
    ax.plot(x, mp_density(x, mp.q, mp.sigma2) * mp.p / max(1, eig.size), color=REF, lw=1.5,
            label=f"MP, fitted sigma^2={mp.sigma2:.3g}")
    ax.axvline(mp.threshold, color=THRESHOLD, ls="--", lw=1, label="edge + TW margin")
    spikes = shown[shown > mp.threshold]
    if spikes.size:  # the outliers (spikes) on the axis, in their own colour
        ax.plot(spikes, np.zeros_like(spikes), "|", color=SPIKE, ms=12, mew=1.5, clip_on=False,
                label=f"{mp.n_outliers} spike(s)")
    ax.xaxis.set_major_locator(_ticks())
    ax.set_title(f"{title}\n{mp.n_outliers} outlier(s), bulk KS {mp.ks_bulk:.3f} "
                 f"(noise {ls.ks_noise:.3f})", fontsize=TITLE_SIZE)
    if eig.size > shown.size:
        ax.text(0.98, 0.5, f"{eig.size - shown.size} beyond\nthe axis", ha="right",
                transform=ax.transAxes, fontsize=LEGEND_SIZE)
    ax.legend(fontsize=LEGEND_SIZE)


def _sorted_sv(ax, ls, init):
    k = np.arange(1, ls.singular_values.size + 1)
    ax.plot(k, ls.singular_values, color=TRAINED, lw=1.5, label="trained W")
    ax.plot(k, ls.gaussian_singular_values, color=REF, lw=1.2, ls="--", label="Gaussian, same shape & RMS")
    if init is not None:
        ax.plot(k, init.singular_values, color=INIT, lw=1.2, label="initial W")
    ax.set(xlabel="index", ylabel="singular value", yscale="log")
    ax.set_title("(d) sorted singular values (paper's panel c)", fontsize=TITLE_SIZE)
    log_ticks(ax)
    ax.legend(fontsize=LEGEND_SIZE)
    ax.grid(alpha=0.3)


def _tail(ax, ls, init):
    for spec, color, label in ((ls, TRAINED, "trained"), (init, INIT, "initial")):
        if spec is None:
            continue
        ev = np.sort(spec.singular_values**2)[::-1]
        ev = ev[ev > 0]
        surv = np.arange(1, ev.size + 1) / ev.size
        ax.loglog(ev, surv, ".", ms=3, color=color,
                  label=f"{label}: alpha {spec.tail.alpha:.2f}")
        t = spec.tail
        if np.isfinite(t.alpha):
            x = np.geomspace(t.xmin, ev[0], 50)
            ax.loglog(x, (t.n_tail / ev.size) * (x / t.xmin) ** (1 - t.alpha), color=color, lw=1)
    ax.set(xlabel="eigenvalue of W^T W", ylabel="fraction >= x")
    log_ticks(ax)  # minor labels overlap on short log ranges
    ax.set_title("(e) eigenvalue tail and power-law fit", fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE)


def _conv(ax, ls, init):
    cs = ls.conv
    k = np.arange(1, cs.values.size + 1)
    ax.plot(k, cs.values, color=TRAINED, lw=1.5, label="trained")
    if init is not None and init.conv is not None:
        ax.plot(k, init.conv.values, color=INIT, lw=1.2, label="initial")
    ax.set(xlabel="index", ylabel="singular value", yscale="log")
    log_ticks(ax)
    ax.set_title(f"(f) conv operator on {cs.input_size[0]}x{cs.input_size[1]}: {cs.method}"
                 f"{'' if cs.exact else ' (approx.)'}\noperator norm {cs.norm:.3g}", fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE)
    ax.grid(alpha=0.3)
