"""`reluscope teacher fc|lc|theorems`: teacher–student experiments and theorem checks."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import common_options, echo, json_option, table_options, write_results, write_tables
from ..errors import ConfigError


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name} must be comma-separated integers, got '{text}'") from None
    if not vals:
        raise ConfigError(f"--{name} is empty")
    return vals


def _save(fig, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        echo(f"figure written to {path}")
    import matplotlib.pyplot as plt

    plt.close(fig)


_plot_option = click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="Save the figure (PNG/SVG) to this file.")


@click.group("teacher")
def command():
    """Teacher–student (Tian 2018): does a student learn its teacher's structure at every level?"""


@command.command("fc")
@click.option("--widths", default="10,15,20,25", show_default=True, help="Teacher hidden widths.")
@click.option("--multi", type=int, default=10, show_default=True, help="Student width factor.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--n-train", type=int, default=100_000, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--protocol", type=click.Choice(["author", "centred"]), default="author", show_default=True,
              help="author: the author's teacher and metric (192 evaluation samples); centred: teacher "
                   "nodes active half the time, metric on 1,024 samples. Both add 10,000 held-out inputs.")
@click.option("--students", type=int, default=1, show_default=True,
              help="Students trained on the same teacher and data, each from its own initialisation "
                   "(the author's code runs 10; each costs a full training run). Reports the mean and "
                   "spread over students.")
@_plot_option
@json_option
@table_options
@common_options
def fc(widths, multi, epochs, n_train, lr, batch_size, protocol, students, plot_path, json_path, csv_path,
       parquet_path, seed, device, quiet):
    """Fully connected teacher–student: best-match correlation of every teacher node."""
    from ._fc import FCConfig, run_fc

    cfg = FCConfig(widths=_ints(widths, "widths"), multi=multi, epochs=epochs, n_train=n_train, lr=lr,
                   batch_size=batch_size, seed=seed, protocol=protocol, students=students)
    who = (lambda h: f"student {h['student'] + 1}/{students}, ") if students > 1 else (lambda h: "")
    res = run_fc(cfg, on_epoch=lambda h: echo(
        f"{who(h)}epoch {h['epoch']}: eval MSE {h['eval_loss']:.4f}, mean best corr "
        + " / ".join(f"{v:.4f}" for v in h["mean_best"]) + " (held-out "
        + " / ".join(f"{v:.4f}" for v in h["mean_best_heldout"]) + ")"))
    n = min(cfg.n_eval, cfg.batch_size * cfg.metric_batches) if protocol == "author" else cfg.n_eval
    first = f"; first of {students} students" if students > 1 else ""
    click.echo(f"protocol {protocol}: mean best correlation on {n} evaluation samples; "
               f"held-out on {cfg.n_heldout} fresh inputs{first}")
    for i, (m, h, f9, f95) in enumerate(zip(res.mean_best, res.mean_best_heldout, res.matched(0.9),
                                            res.matched(0.95))):
        click.echo(f"layer {i + 1}: mean best correlation {m:.4f}, held-out {h:.4f}, small-sample bias "
                   f"{m - h:+.4f}, matched >=0.9 {f9:.2f}, >=0.95 {f95:.2f}")
    if students > 1:
        sb, sh = res.students_spread("mean_best"), res.students_spread("mean_best_heldout")
        click.echo(f"over {students} students (mean ± sample std [min, max]):")
        for i in range(len(res.best)):
            click.echo(f"layer {i + 1}: mean best correlation {sb['mean'][i]:.4f} ± {sb['std'][i]:.4f} "
                       f"[{sb['min'][i]:.4f}, {sb['max'][i]:.4f}], held-out {sh['mean'][i]:.4f} ± "
                       f"{sh['std'][i]:.4f} [{sh['min'][i]:.4f}, {sh['max'][i]:.4f}]")
    if plot_path:
        from ._plots import plot_fc

        _save(plot_fc(res), plot_path)
    write_results(json_path, res.to_dict())
    write_tables(res, csv_path, parquet_path)


@command.command("lc")
@click.option("--input-size", default="4x4", show_default=True, help="L (1-D) or HxW (2-D).")
@click.option("--depth", type=int, default=3, show_default=True)
@click.option("--kernel", type=int, default=2, show_default=True)
@click.option("--stride", type=int, default=None, help="Window step (default: kernel; smaller overlaps).")
@click.option("--m", "m", default="2,4,4,4", show_default=True, help="Values per level, leaves first.")
@click.option("--kind", type=click.Choice(["table", "relu", "bijective"]), default="table", show_default=True)
@click.option("--widths", default="20,20", show_default=True,
              help="Student nodes per field, levels 1..depth-1.")
@click.option("--batch-norm", is_flag=True)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--n-train", type=int, default=20_000, show_default=True)
@click.option("--lr", type=float, default=0.003, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@_plot_option
@json_option
@table_options
@common_options
def lc(input_size, depth, kernel, stride, m, kind, widths, batch_norm, epochs, n_train, lr, optimizer,
       plot_path, json_path, csv_path, parquet_path, seed, device, quiet):
    """Locally connected teacher and student: per-level mimicry of z_α."""
    from ._mimicry import LCConfig, run_lc

    size = _ints(input_size, "input-size")
    cfg = LCConfig(input_size=size, depth=depth, kernel=kernel, stride=stride, m=_ints(m, "m"), kind=kind,
                   widths=_ints(widths, "widths"), batch_norm=batch_norm, epochs=epochs, n_train=n_train,
                   lr=lr, optimizer=optimizer, seed=seed)
    res = run_lc(cfg)
    last = res.history[-1]
    click.echo(f"test accuracy {last['test_acc']:.3f}")
    for lv in last["levels"]:
        click.echo(f"level {lv['level']}: mean best correlation {lv['mean_correlation']:.3f}, "
                   f"matched >=0.9 {lv['matched_0.9']:.2f}, >=0.95 {lv['matched_0.95']:.2f}, "
                   f"selectivity {lv['mean_selectivity']:.3f}")
    if plot_path:
        from ._plots import plot_lc

        _save(plot_lc(res), plot_path)
    write_results(json_path, res.to_dict())
    write_tables(res, csv_path, parquet_path)


@command.command("theorems")
@click.option("--full", is_flag=True, help="Longer training in the Theorem 6 check.")
@json_option
@table_options
@common_options
def theorems(full, json_path, csv_path, parquet_path, seed, device, quiet):
    """Check Theorems 1, 2, 5, 6, 8 and the matrix form; each also on a broken input."""
    from ._theorems import check_all

    checks = check_all(seed=seed, quick=not full)
    for c in checks:
        click.echo(f"{c.name:36s} {c.case:58s} residual {c.residual:.2e}  {'holds' if c.holds else 'fails'}")
    write_results(json_path, [c.to_dict() for c in checks])
    write_tables(checks, csv_path, parquet_path)
