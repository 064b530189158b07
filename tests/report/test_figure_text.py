"""Every figure the report draws, measured: no two labels overlap, and it fits the report's
column at its natural size (so its text is shown at its point size).

Overlap is computed from the rendered text bounding boxes (`fig.canvas.get_renderer()`):
titles, axis labels, tick labels and legend texts of every axes and the figure's title.
Set RELUSCOPE_FIGURES=folder to keep the PNGs for a look.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reluscope import _style

plt = _style.pyplot()

DPI = 110  # as the report embeds them
COLUMN_PX = 1000  # the report's text column (CSS px), see report/_build.py
MIN_FONT = 7  # points


# ----------------------------------------------------------------------------- inputs, small and real


@pytest.fixture(scope="module")
def mlp_setup():
    from reluscope import nets
    from reluscope.data import load

    torch.manual_seed(0)
    init = nets.mlp([64, 48, 48, 10])
    model = nets.mlp([64, 48, 48, 10])
    model.load_state_dict(init.state_dict())
    with torch.no_grad():  # a "trained" net: a few strong directions on top of the initial weights
        for m in model:
            if isinstance(m, torch.nn.Linear):
                u, v = torch.randn(m.out_features, 3), torch.randn(3, m.in_features)
                m.weight += 0.15 * u @ v / m.in_features ** 0.5
    data = load("digits")
    return model, init, data


def _batch(n_positive, kinds):
    return SimpleNamespace(n_positive=np.asarray(n_positive), kinds=list(kinds))


def _preimage(n_panels):
    from reluscope.preimage._plots import positives_histogram

    rng = np.random.default_rng(0)
    panels = []
    for i in range(n_panels):
        pos = rng.integers(600 + 60 * i, 900 + 60 * i, 100)
        kinds = np.where(pos > 784, "singleton", np.where(pos > 700, "compact", "unbounded")).astype(object)
        kinds[:2] = "degenerate"
        panels.append((f"protocol {i} ({90 + i}.0% test acc.)", _batch(pos, kinds)))
    return positives_histogram(panels, 784)


def _arms():
    from reluscope.shadow._experiment import ArmResult

    rng = np.random.default_rng(1)
    arms = []
    for budget, epochs in ((100, 50), (1150, 6)):
        ep = list(range(1, epochs + 1)) if epochs < 30 else [1, 2, 4, 8, 16, 32, 50]
        for k, arm in enumerate(("baseline", "dropout", "shadow", "dropout+shadow")):
            mean = list(np.linspace(0.8, 0.05 + 0.02 * k, len(ep)))
            arms.append(ArmResult(arm, budget, 0.05, epochs, {}, list(0.05 + 0.02 * k + 0.01 * rng.random(3)),
                                  mean, [0.02] * len(ep), 1.0, ep))
    grid = [("baseline", None), ("default", None), ("layer", 1), ("layer", "output"), ("rho", 0.5),
            ("rho", 1.0), ("ratio", 0.1), ("ratio", 1.0), ("weight", 0.1), ("weight", 0.5), ("weight", 1.0),
            ("warmup", 0.5), ("input_dropout", 0.2)]  # the full configuration's sweep
    sweeps = [dict(kind=k, value=v, mean=0.12 + 0.002 * i, std=0.01, budget=100, val_errors=[0.12] * 3)
              for i, (k, v) in enumerate(grid)]
    return SimpleNamespace(arms=arms, sweeps=sweeps)


def _spectrum(mlp_setup):
    from reluscope.spectrum import analyze

    model, init, _ = mlp_setup
    return analyze(model, init)


def _jacobian(mlp_setup):
    from reluscope.jacobian import spectra

    model, _, data = mlp_setup
    return spectra(model, data.test.x[:3])


def _theory():
    from reluscope.shadow._theory import multilayer, theorem1

    t1 = theorem1(ns=(512,), ks=(16,), ratios=(1 / 4, 1 / 8, 1 / 16), seeds=2, codes=8)
    ml = [multilayer(2, widths=[512, 256, 128], k_bottom=200, k_top=16, middle=(32, 64, 128), seeds=1,
                     codes=8),
          multilayer(3, widths=[512, 256, 128, 128], k_bottom=200, k_top=16, middle=(24, 32, 40), seeds=1,
                     codes=8)]
    return t1, ml


def _reconstruction(mlp_setup):
    from reluscope import nets
    from reluscope.shadow import reconstruct

    model, _, data = mlp_setup
    net = nets.load(model, input_shape=(1, 8, 8))
    return reconstruct(net, data.test.x[:4], rho=0.5, generator=0)


def _teacher():
    from reluscope.teacher._fc import FCConfig, run_fc
    from reluscope.teacher._mimicry import LCConfig, run_lc

    fc = run_fc(FCConfig(widths=(5, 6, 7, 8), outputs=10, n_train=512, n_eval=64, epochs=2, batch_size=64))
    lc = run_lc(LCConfig(n_train=512, n_eval=128, epochs=2))
    return fc, lc


def _figures(mlp_setup):
    """(name, zero-argument builder) of every figure-producing function."""
    from reluscope.jacobian._plots import decay_figure, effect_of_relu_figure
    from reluscope.report._core_sections import training_figure
    from reluscope.shadow._experiment_plots import plot_dropout_vs_shadow, plot_error_vs_budget, plot_sweeps
    from reluscope.shadow._plots import (
        plot_multilayer,
        plot_reconstruction,
        plot_reconstruction_errors,
        plot_shadow_curves,
        plot_theorem1,
    )
    from reluscope.spectrum._plots import layer_figure, summary_figure
    from reluscope.teacher._plots import plot_fc, plot_lc

    cache: dict = {}

    def once(key, fn):
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    spec = lambda: once("spectrum", lambda: _spectrum(mlp_setup))  # noqa: E731
    jac = lambda: once("jacobian", lambda: _jacobian(mlp_setup))  # noqa: E731
    theory = lambda: once("theory", _theory)  # noqa: E731
    rec = lambda: once("rec", lambda: _reconstruction(mlp_setup))  # noqa: E731
    teacher = lambda: once("teacher", _teacher)  # noqa: E731
    history = [dict(epoch=e, train_loss=1 / e, test_loss=1.2 / e, train_acc=1 - 0.5 / e, test_acc=1 - 0.6 / e)
               for e in range(1, 11)]
    return {
        "training": lambda: training_figure(history),
        "preimage-2": lambda: _preimage(2),
        "preimage-4": lambda: _preimage(4),
        "spectrum-summary": lambda: summary_figure(spec()),
        "spectrum-layer": lambda: layer_figure(spec().layers[0], spec().init[0]),
        "spectrum-last-layer": lambda: layer_figure(spec().layers[-1], spec().init[-1]),
        "jacobian-effect": lambda: effect_of_relu_figure(jac()),
        "jacobian-decay": lambda: decay_figure(jac()),
        "shadow-theorem1": lambda: plot_theorem1(theory()[0]),
        "shadow-multilayer": lambda: plot_multilayer(theory()[1]),
        "shadow-reconstruction": lambda: plot_reconstruction(rec()),
        "shadow-reconstruction-errors": lambda: plot_reconstruction_errors(rec()),
        "shadow-curves": lambda: plot_shadow_curves(_arms()),
        "shadow-dropout": lambda: plot_dropout_vs_shadow(_arms(), title="digits: test error per epoch"),
        "shadow-budget": lambda: plot_error_vs_budget(_arms(), title="digits"),
        "shadow-sweeps": lambda: plot_sweeps(_arms(), title="digits sweep"),
        "teacher-fc": lambda: plot_fc(teacher()[0]),
        "teacher-lc": lambda: plot_lc(teacher()[1]),
    }


NAMES = ["training", "preimage-2", "preimage-4", "spectrum-summary", "spectrum-layer", "spectrum-last-layer",
         "jacobian-effect", "jacobian-decay", "shadow-theorem1", "shadow-multilayer", "shadow-reconstruction",
         "shadow-reconstruction-errors", "shadow-curves", "shadow-dropout", "shadow-budget", "shadow-sweeps",
         "teacher-fc", "teacher-lc"]


@pytest.fixture(scope="module")
def builders(mlp_setup):
    b = _figures(mlp_setup)
    assert sorted(b) == sorted(NAMES)
    return b


# ----------------------------------------------------------------------------- the measurements


def _texts(fig):
    """(owner, what, text, bbox in display px) of every visible, non-empty label of `fig`."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = []

    def add(owner, what, t):
        if t is not None and t.get_visible() and t.get_text().strip():
            out.append((owner, what, t.get_text(), t.get_window_extent(r)))

    for k, ax in enumerate(fig.axes):
        for what, t in (("title", ax.title), ("title", ax._left_title), ("title", ax._right_title),
                        ("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)):
            add(k, what, t)
        for what, axis, i in (("xtick", ax.xaxis, 0), ("ytick", ax.yaxis, 1)):
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-9
            for t in axis.get_ticklabels(which="both"):  # those drawn: inside the view
                if lo - span <= t.get_position()[i] <= hi + span:
                    add(k, what, t)
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                add(k, "legend", t)
    if fig._suptitle is not None:
        add("figure", "suptitle", fig._suptitle)
    return out, r


def _overlaps(texts, slack: float = 1.0):
    """Pairs of labels whose boxes intersect by more than `slack` px each way.

    Labels of different axes must never touch; within one axes, tick labels of one axis
    must not collide with each other, and titles/axis labels not with tick labels. (The
    x and y tick labels at a corner, and a legend over the data, are normal.)"""
    bad = []
    for i, (o1, w1, t1, b1) in enumerate(texts):
        for o2, w2, t2, b2 in texts[i + 1:]:
            ix = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
            iy = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
            if ix <= slack or iy <= slack:
                continue
            if o1 == o2:
                if "legend" in (w1, w2) or {w1, w2} == {"xtick", "ytick"}:
                    continue
            bad.append(f"{w1} {t1!r} (axes {o1}) x {w2} {t2!r} (axes {o2})")
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_figure_has_no_overlapping_labels_and_fits_the_report(builders, name):
    fig = builders[name]()
    try:
        texts, renderer = _texts(fig)
        assert texts, "a figure without any labels"
        bad = _overlaps(texts)
        assert not bad, f"{name}: overlapping labels: {bad[:6]}"
        sizes = [t.get_fontsize() for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()
                 + [ax.title, ax.xaxis.label, ax.yaxis.label] if t.get_text()]
        small = [s for s in sizes if s < MIN_FONT]
        assert not small, f"{name}: text below {MIN_FONT} pt"
        # shown in the report at its natural size: the saved (tight) width fits the column
        width_px = fig.get_tightbbox(renderer).width * DPI
        assert width_px <= COLUMN_PX, f"{name}: {width_px:.0f} px wide, the report shrinks it to fit"
        folder = os.environ.get("RELUSCOPE_FIGURES")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fig.savefig(Path(folder) / f"{name}.png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)


def test_overlap_check_catches_colliding_labels():
    """The measurement itself: two panels whose long titles run into each other fail it."""
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))
    for ax in axes:
        ax.set_title("a title far too long for half of a narrow figure")
    try:
        texts, _ = _texts(fig)
        assert _overlaps(texts)
    finally:
        plt.close(fig)


def test_one_colour_per_quantity():
    from reluscope.preimage._classify import KINDS

    assert set(_style.KINDS) == set(KINDS)  # every pre-image kind has its colour
    assert len(set(_style.KINDS.values())) == len(_style.KINDS)
    assert len(set(_style.ARMS.values())) == len(_style.ARMS)
    assert _style.TRAINED != _style.INITIAL and _style.TRAINED != _style.REFERENCE
    assert _style.grid(4) == (2, 2) and _style.grid(3) == (2, 2) and _style.grid(1) == (1, 1)
