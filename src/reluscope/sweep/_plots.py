"""Plots of a gathered sweep: each metric against each varied parameter, mean ± std over seeds."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ._grid import Grid


def _numeric_metrics(rows: list[dict], params: set[str]) -> list[str]:
    skip = params | {"cell", "seed", "seconds"}
    keys = dict.fromkeys(k for r in rows for k in r if k not in skip)
    return [k for k in keys if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                   for r in rows)]


def plot_sweep(grid: Grid, rows: list[dict], folder: Path) -> list[Path]:
    """One PNG per (metric, varied parameter); other varied parameters become lines."""
    from .._style import pyplot

    plt = pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    varied = [p for p, v in grid.grid.items() if len(v) > 1]
    paths = []
    for metric in _numeric_metrics(rows, set(grid.grid) | set(grid.fixed)):
        for param in varied:
            others = [p for p in varied if p != param]
            groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
            for r in rows:
                groups[tuple(r[o] for o in others)][r[param]].append(r[metric])
            fig, ax = plt.subplots(figsize=(5.6, 3.6), layout="constrained")
            for label, series in groups.items():
                xs = [x for x in grid.grid[param] if x in series]
                pos = np.arange(len(xs)) if any(isinstance(x, str) for x in xs) else np.array(xs, float)
                mean = np.array([np.mean(series[x]) for x in xs])
                std = np.array([np.std(series[x]) for x in xs])
                name = ", ".join(f"{o}={v}" for o, v in zip(others, label)) or metric
                ax.errorbar(pos, mean, yerr=std, marker="o", capsize=3, label=name)
                if any(isinstance(x, str) for x in xs):
                    ax.set_xticks(pos, [str(x) for x in xs])
            ax.set(xlabel=param, ylabel=metric, title=f"{metric} vs {param} (mean ± std over seeds)")
            ax.grid(alpha=0.3)
            if len(groups) > 1:
                ax.legend(fontsize=7)
            path = folder / f"{metric}_vs_{param}.png"
            fig.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
    return paths
