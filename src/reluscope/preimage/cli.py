"""`reluscope preimage MODEL --layer L --data D`: pre-image kinds of a ReLU layer."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import (
    common_options,
    echo,
    json_option,
    load_model,
    model_file_options,
    table_options,
    write_results,
    write_tables,
)
from ._tol import Tolerances


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--layer", default="0", show_default=True,
              help="Index or name of a ReLU layer; on a graph, a ReLU node's name (or index among them).")
@click.option("--data", default="digits", show_default=True, help="Data set name or path.")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--n", "n_samples", type=int, default=1000, show_default=True, help="Samples to classify.")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--scheduler", default=None,
              help="Dask scheduler address, e.g. tcp://HOST:8786, to classify the samples on a cluster "
                   "(same results, same order).")
@click.option("--input-shape", default=None, help="Per-sample input shape, e.g. 1,28,28.")
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the histogram of positive outputs by kind (PNG/SVG).")
@click.option("--certificates", is_flag=True, help="Include the certificates in the JSON.")
@click.option("--zero-tol", type=float, default=Tolerances.zero, show_default=True,
              help="|z_i| below this times the size of its terms counts as an exactly zero pre-activation.")
@click.option("--rank-tol", type=float, default=Tolerances.rank, show_default=True,
              help="Singular values below this times the largest count as zero.")
@model_file_options
@json_option
@table_options
@common_options
def command(model, layer, data, split, n_samples, workers, scheduler, input_shape, figure, certificates,
            zero_tol, rank_tol, json_path, csv_path, parquet_path, seed, device, quiet):
    """Classify the pre-image of layer LAYER's output (singleton / compact / unbounded) for
    N samples of DATA. For a deeper layer the pre-image is taken in that layer's own input
    space (the previous layer's outputs); for a ReLU node of a graph (e.g. a residual
    block's last ReLU) in the joint space of the nodes its pre-activation is affine in."""
    import torch

    from ..data import load as load_data
    from ..errors import ConfigError
    from ._net import classify_layer, resolve_relu_layer

    if n_samples < 1:
        raise ConfigError(f"--n must be at least 1, got {n_samples}")
    if not (0 < zero_tol < 1 and 0 < rank_tol < 1):
        raise ConfigError("--zero-tol and --rank-tol must lie strictly between 0 and 1")
    ds = load_data(data, seed=seed)
    net = load_model(model, ds, input_shape)
    index = resolve_relu_layer(net, layer)  # a bad layer fails before any work
    part = getattr(ds, split)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(part), generator=g)[:n_samples].sort().values
    echo(f"classifying {len(idx)} {split} samples of {ds.spec.name}")
    res = classify_layer(net, index, part.x[idx], Tolerances(zero=zero_tol, rank=rank_tol), workers=workers,
                         scheduler=scheduler)
    counts = res.batch.counts()
    click.echo(f"{res.label}, {res.m} x {res.n}; pre-image in {res.space}")
    click.echo("kinds: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    pos = res.batch.n_positive
    click.echo(f"positive outputs per sample: mean {pos.mean():.1f}, min {pos.min()}, max {pos.max()}; "
               f"{res.batch.seconds:.1f} s ({res.batch.workers} workers)")
    out = res.to_dict()
    out["sample_indices"] = idx.tolist()
    if certificates:
        out["samples"] = [r.to_dict(certificate=True) for r in res.batch.results]
    if figure is not None:
        from ._plots import positives_histogram

        fig = positives_histogram([(res.label, res.batch)], res.n)
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure, dpi=120, bbox_inches="tight")
        echo(f"figure written to {figure}")
    write_results(json_path, out)
    write_tables(res, csv_path, parquet_path)
