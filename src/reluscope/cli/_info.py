"""`reluscope info MODEL`: the layer table of a chain, the node table of any other graph."""

from __future__ import annotations

import click

from ._common import (
    common_options,
    json_option,
    load_model,
    model_file_options,
    table_options,
    write_results,
    write_tables,
)

LAYER_COLUMNS = ["name", "type", "in_shape", "out_shape", "parameters", "activation"]
NODE_COLUMNS = ["name", "op", "type", "inputs", "out_shape", "parameters", "activation"]


def _cell(col: str, v) -> str:
    if col == "inputs":
        return ",".join(v)
    return "×".join(map(str, v)) if isinstance(v, list) else str(v)


def _table(rows: list[dict], cols: list[str] = LAYER_COLUMNS, first: str = "name") -> str:
    cells = [[first if i == 0 else c] for i, c in enumerate(cols)]
    for r in rows:
        for col, cell in zip(cols, cells):
            cell.append(_cell(col, r[col]))
    widths = [max(map(len, c)) for c in cells]
    lines = ["  ".join(c[i].ljust(w) for c, w in zip(cells, widths)).rstrip()
             for i in range(len(rows) + 1)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input-shape", default=None, help="Per-sample input shape, e.g. 3,32,32 "
              "(needed for conv models saved without it).")
@click.option("--data", default=None, help="Data whose sample shape gives the input shape.")
@model_file_options
@json_option
@table_options
@common_options
def info(model, input_shape, data, json_path, csv_path, parquet_path, seed, device, quiet):
    """Print the layer table of MODEL: name, type, shapes, parameters, activation.

    A model that is not a chain of layers (residual adds, concatenations, smooth
    activations) prints its node table instead: node, op, type, inputs, out_shape,
    parameters, activation."""
    ds = None
    if data and not input_shape:
        from ..data import load as load_data

        ds = load_data(data, seed=seed)
    net = load_model(model, ds, input_shape)
    nodes = net.table()
    results = {"input_shape": list(net.input_shape), "chain": net.is_chain, "nodes": nodes}
    if net.is_chain:
        rows = net.summary()
        click.echo(_table(rows))
        click.echo(f"\ninput {tuple(net.input_shape)}, {len(net)} layers, "
                   f"{net.num_parameters():,} parameters")
        results["layers"] = rows
    else:
        click.echo(_table(nodes, NODE_COLUMNS, first="node"))
        n_affine = sum(n["op"] == "affine" for n in nodes)
        click.echo(f"\ninput {tuple(net.input_shape)}, {len(nodes)} nodes ({n_affine} affine), "
                   f"{net.num_parameters():,} parameters; not a chain of layers")
    write_results(json_path, results)
    write_tables(results.get("layers", nodes), csv_path, parquet_path)
