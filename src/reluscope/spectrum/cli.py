"""`reluscope spectrum MODEL`: are the weights random-like? Per-layer table, JSON, figures."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..cli import common_options, echo, json_option, table_options, write_results, write_tables
from ..cli._common import model_file_options, read_model


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3g}"
    return str(v)


def format_table(result) -> str:
    """The per-layer table printed by the command (trained, and initial when analysed)."""
    cols = ["layer", "shape", "verdict", "outliers", "alpha", "ks_bulk", "ks_noise", "kurtosis"]
    if result.init is not None:
        cols += ["init_verdict", "init_outliers", "init_alpha"]
    rows = [[_fmt(r[c]) for c in cols] for r in result.table()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    for ls in result.layers:
        if ls.conv is not None:
            lines.append(f"conv {ls.name}: operator norm {ls.conv.norm:.4g} on "
                         f"{ls.conv.input_size[0]}x{ls.conv.input_size[1]} ({ls.conv.method})")
    for name, reason in result.skipped:
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", default=None, help="Data whose sample shape is the input shape (conv nets).")
@click.option("--input-shape", default=None, help="Per-sample input shape, e.g. 3,32,32.")
@click.option("--init", "with_init", is_flag=True,
              help="Also analyse the model at initialisation: the checkpoint's initial weights, "
                   "else the same architecture re-initialised with --seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write figures (summary.png, layer-<name>.png) into this folder.")
@click.option("--max-dense", type=int, default=2048, show_default=True,
              help="Largest side for the exact dense SVD of zero-padded conv operators.")
@click.option("--false-alarm", type=float, default=1e-3, show_default=True,
              help="Per-layer probability that pure noise shows an outlier.")
@model_file_options
@json_option
@table_options
@common_options
def command(model, data, input_shape, with_init, out_dir, max_dense, false_alarm, json_path, csv_path,
            parquet_path, seed, device, quiet):
    """Test whether the weights of MODEL look like i.i.d. Gaussian random matrices, per layer:
    entry statistics, singular values vs Marchenko-Pastur and vs a Gaussian matrix, spikes
    vs heavy tails, conv operator singular values."""
    from .. import nets
    from ..errors import CheckpointError, ConfigError, ModelError
    from ._analyze import analyze

    if not 0 < false_alarm < 1:
        raise ConfigError(f"--false-alarm must be in (0, 1), got {false_alarm}")
    ds = None
    if data and not input_shape:
        from ..data import load as load_data

        ds = load_data(data, seed=seed)
    file, shape = read_model(model, ds, input_shape)
    try:
        subject = nets.load(file.model, input_shape=shape)
    except ModelError as err:  # untraceable or unsupported: read the weights from the modules
        if isinstance(err, CheckpointError):
            raise
        echo(f"{model} does not import as a graph ({str(err).split(';')[0]}); analysing the weights "
             "of its Linear, Conv and MultiheadAttention modules instead")
        subject = file.model
    init = None
    if with_init:
        init = file.init_model if file.init_model is not None else True
        echo("initial model: " + ("from the checkpoint" if init is not True
                                  else f"re-initialised (seed {seed})"))
    result = analyze(subject, init_model=init, input_shape=shape, seed=seed, max_dense=max_dense,
                     false_alarm=false_alarm)
    click.echo(format_table(result))
    if out_dir is not None:
        from ._plots import save_figures

        paths = save_figures(result, out_dir)
        echo(f"{len(paths)} figures written to {out_dir}")
    write_results(json_path, result)
    write_tables(result, csv_path, parquet_path)
