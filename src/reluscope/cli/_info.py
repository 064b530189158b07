"""`reluscope info MODEL`: the layer table."""

from __future__ import annotations

import click

from ._common import common_options, json_option, load_model, write_results


def _table(rows: list[dict]) -> str:
    cols = ["name", "type", "in_shape", "out_shape", "parameters", "activation"]
    cells = [[c] for c in cols]
    for r in rows:
        for col, cell in zip(cols, cells):
            v = r[col]
            cell.append("×".join(map(str, v)) if isinstance(v, list) else str(v))
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
@json_option
@common_options
def info(model, input_shape, data, json_path, seed, device, quiet):
    """Print the layer table of MODEL: name, type, shapes, parameters, activation."""
    ds = None
    if data and not input_shape:
        from ..data import load as load_data

        ds = load_data(data, seed=seed)
    net = load_model(model, ds, input_shape)
    rows = net.summary()
    click.echo(_table(rows))
    click.echo(f"\ninput {tuple(net.input_shape)}, {len(net)} layers, "
               f"{net.num_parameters():,} parameters")
    write_results(json_path, {"input_shape": list(net.input_shape), "layers": rows})
