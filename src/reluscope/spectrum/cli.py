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


def _grid(cols: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    lines = [cols, ["-" * w for w in widths], *rows]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in lines]


def _frac(v) -> str:
    return "-" if math.isnan(v) else f"{v:.3f}"


def _kurtosis_ci(r: dict) -> str:
    k, lo, hi = r.get("kurtosis", math.nan), r.get("kurtosis_low", math.nan), r.get("kurtosis_high", math.nan)
    if math.isnan(k):
        return "-"
    return f"{k:.2f}" if math.isnan(lo) else f"{k:.2f} [{lo:.2f}, {hi:.2f}]"


def _porter_thomas(r: dict, which: str) -> str:
    p = r.get(f"pt_{which}_p", math.nan)
    if math.isnan(p):
        return "-"
    return f"{'rej' if r.get(f'pt_{which}_rejected', p < 0.01) else 'ok'} p={p:.2g}"


# The effect-size table: (header, cell from a `result.table()` row). The headers are short: the legend
# printed under the table (`effect_legend`) says what they are; --json/--csv use the full names.
_EFFECTS = [("layer", lambda r: str(r["layer"])),
            ("bulk_frac", lambda r: _frac(r["bulk_fraction"])),
            ("energy_out", lambda r: _frac(r["outlier_energy"])),
            ("ks/noise", lambda r: _fmt(r["ks_bulk_over_noise"])),
            ("kurtosis [95% CI]", _kurtosis_ci),
            ("spikes_shuffled", lambda r: _fmt(r["shuffled_spikes"])),
            ("learned", lambda r: _fmt(r["learned_spikes"])),
            ("PT_bulk", lambda r: _porter_thomas(r, "bulk")),
            ("PT_top", lambda r: _porter_thomas(r, "top"))]


def effect_legend() -> str:
    from ._effects import MIN_BULK_FRACTION

    return ("bulk_frac: share of eigenvalues inside the MP bulk "
            f"(a random-like bulk has >= {MIN_BULK_FRACTION:g})\n"
            "energy_out: the outliers' share of ||W||_F^2; ks/noise: bulk KS to MP / Gaussian noise level "
            "(<= 1 fits)\n"
            "spikes_shuffled: outliers left after permuting the entries (from the entry law); "
            "learned: outliers beyond those\n"
            "PT_bulk, PT_top: Porter-Thomas test of bulk / top singular vectors at 1% (ok or rej, p-value)")


def format_table(result) -> str:
    """The per-layer tables printed by the command: the verdicts (trained, and initial when analysed),
    then the effect sizes (how much of each matrix looks random)."""
    cols = ["layer", "shape", "verdict", "outliers", "alpha", "ks_bulk", "ks_noise", "kurtosis"]
    if result.init is not None:
        cols += ["init_verdict", "init_outliers", "init_alpha"]
    table = result.table()
    lines = _grid(cols, [[_fmt(r[c]) for c in cols] for r in table])
    if table and "bulk_fraction" in table[0]:
        effects = list(_EFFECTS)
        if "init_bulk_fraction" in table[0]:
            effects.append(("init_bulk_frac", lambda r: _frac(r["init_bulk_fraction"])))
        lines += ["", "effect sizes:"]
        lines += _grid([h for h, _ in effects], [[get(r) for _, get in effects] for r in table])
        lines += effect_legend().split("\n")
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
    vs heavy tails, conv operator singular values. A second table gives the effect sizes: how much
    of each matrix looks random (bulk fraction, energy outside the bulk, spikes surviving a shuffle of
    the entries, Porter-Thomas tests of the singular vectors); --json and --csv hold every number."""
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
