"""One colour per quantity in every figure, and the figure sizes that stay legible in the report.

The report's text column is about 930 px wide and figures are embedded at 110 dpi, so a
figure up to `MAX_WIDTH` inches shows at its natural size (text at its point size); wider
ones would be shrunk with their labels. Multi-panel figures therefore wrap into a grid of
at most `MAX_COLUMNS` columns instead of growing sideways.

Colours name what is drawn, not where: trained weights are the same blue in the spectrum,
shadow and pre-image sections, the theory/reference curve the same orange, and so on.
"""

from __future__ import annotations

import math

# --- weights
TRAINED = "#1f5fa8"  # trained weights (and the measured quantity of a trained net)
INITIAL = "#8c8c8c"  # the same net at initialisation
RANDOM = "#8c8c8c"  # random weights of the same shapes and scale (initial weights are random)

# --- theory against measurement
REFERENCE = "#d9480f"  # a reference law: fitted Gaussian, Gaussian matrix, the theorem's prediction
MP_FIT = REFERENCE  # the Marchenko–Pastur law fitted to a spectrum
MEASURED = TRAINED  # a measured value beside its bound
BOUND = REFERENCE  # a proven bound or the theory's slope
THRESHOLD = "#222222"  # a decision line: MP edge + Tracy–Widom margin, input dimension n

# --- spectra
BULK = TRAINED  # eigenvalues inside the MP bulk
SPIKE = "#c2185b"  # outliers above the MP edge (spikes)

# --- pre-image kinds (reluscope.preimage.KINDS)
KINDS = {
    "singleton": "#3b75af",  # a single point: the output determines the input
    "compact": "#4e9f3d",  # a bounded polytope
    "unbounded": "#ef8636",  # information lost along a direction
    "degenerate": "#8e6bb0",  # too close to a tie to certify in float64
}

# --- SHADOW training arms
ARMS = {"baseline": "#7f7f7f", "dropout": "#1f77b4", "shadow": "#ff7f0e", "dropout+shadow": "#d62728"}
BASELINE, SHADOW = ARMS["baseline"], ARMS["shadow"]

# --- shadow-model offset rules (Theorem 1 experiments)
OFFSETS = {"none": "#7f7f7f", "theory": REFERENCE, "best": TRAINED, "net": "#4e9f3d"}

# --- training curves
TRAIN, TEST = "#1f77b4", "#d62728"

# --- ordered series (layers by depth, levels of a tree): a sequential colour map
DEPTH_CMAP = "viridis"

# --- sizes (inches at the report's 110 dpi)
MAX_WIDTH = 8.4
MAX_COLUMNS = 2
PANEL_HEIGHT = 3.2
LEGEND_SIZE = 8
TITLE_SIZE = 10


def pyplot():
    """matplotlib.pyplot: on the Agg backend (no display needed), except inside Jupyter or
    IPython, where the user's backend (inline figures) is left alone."""
    import sys

    import matplotlib

    if "IPython" not in sys.modules or sys.modules["IPython"].get_ipython() is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def depth_colors(n: int) -> list:
    """`n` colours of `DEPTH_CMAP`, shallow to deep."""
    import numpy as np

    cmap = pyplot().get_cmap(DEPTH_CMAP)
    return [cmap(v) for v in np.linspace(0, 0.9, max(1, n))]


def grid(n: int, columns: int = MAX_COLUMNS) -> tuple[int, int]:
    """(rows, columns) of a grid for `n` panels, at most `columns` wide."""
    cols = max(1, min(n, columns))
    return math.ceil(max(n, 1) / cols), cols


def subplots(nrows: int = 1, ncols: int = 1, *, width: float | None = None,
             panel_height: float = PANEL_HEIGHT, height: float | None = None, **kw):
    """`plt.subplots` with constrained layout, the report's width, and `squeeze=False` axes.

    Arguments:
        nrows, ncols: the grid.
        width: figure width in inches (default: `MAX_WIDTH` for two or more columns, 5.6 for one).
        panel_height: height of one row of panels; `height` sets the whole figure instead.

    Returns:
        `(fig, axes)` with `axes` a 2-D array.
    """
    plt = pyplot()
    width = width or (MAX_WIDTH if ncols > 1 else 5.6)
    height = height or panel_height * nrows + 0.3
    kw.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kw)


def panels(n: int, *, columns: int = MAX_COLUMNS, panel_height: float = PANEL_HEIGHT, **kw):
    """A figure with `n` panels wrapped into rows of at most `columns`; unused cells are removed.

    Returns:
        `(fig, axes)` with `axes` a flat list of the `n` panels.
    """
    rows, cols = grid(n, columns)
    fig, axes = subplots(rows, cols, panel_height=panel_height, **kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def log_ticks(ax) -> None:
    """Readable ticks on the log axes of `ax`, for the limits it has now (call after plotting).

    Over less than a factor 3 plain numbers at a few round values; up to about a decade the
    1-2-3-5 steps, up to two decades the 1-2-5 steps, as plain numbers; wider ranges powers
    of ten. Minor ticks get no labels (on short log ranges matplotlib labels them, and they
    collide).
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(lim)
        axis.set_minor_formatter(NullFormatter())
        if not lo > 0:
            continue
        if hi / lo < 3:
            axis.set_major_locator(MaxNLocator(nbins=4))
            axis.set_major_formatter(plain)
        elif hi / lo < 150:
            subs = (1.0, 2.0, 3.0, 5.0) if hi / lo < 12 else (1.0, 2.0, 5.0)
            axis.set_major_locator(LogLocator(base=10, subs=subs))
            axis.set_major_formatter(plain)
        else:
            axis.set_major_locator(LogLocator(base=10, numticks=8))
