"""`reluscope sweep GRID.toml`: run a grid locally or on a Dask cluster, resumably."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli._common import common_options, echo, json_option, table_options, write_results, write_tables


@click.command()
@click.argument("grid_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results folder (default: the grid file's name without .toml).")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default: CPU count; 0 = in this process).")
@click.option("--scheduler", default=None,
              help="Dask scheduler address, e.g. tcp://HOST:8786, to run on a cluster.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@json_option
@table_options
@common_options
def sweep(grid_file, out, workers, scheduler, fmt, json_path, csv_path, parquet_path, seed, device, quiet):
    """Run the task of GRID_FILE on every cell of its grid.

    Each finished cell is written atomically to OUT/cells/; rerunning the same command
    after a crash or Ctrl-C resumes and never repeats or loses a finished cell. The
    results are gathered into OUT/results.csv (or .parquet) with plots in OUT/plots/.
    """
    from ._grid import read_grid
    from ._plots import plot_sweep
    from ._run import run_sweep

    grid = read_grid(grid_file)
    out = out or grid_file.with_suffix("")
    echo(f"{len(grid.cells())} cells of task '{grid.task}' -> {out}")
    try:
        res = run_sweep(grid, out, workers=workers, scheduler=scheduler, table_name=f"results.{fmt}")
    except KeyboardInterrupt:
        echo("interrupted: finished cells are stored; rerun the same command to resume")
        raise
    if res.rows:
        plot_sweep(grid, res.rows, out / "plots")
    click.echo(f"{res.total} cells: {res.skipped} already done, {res.ran} run now, "
               f"{len(res.failures)} failed; table: {res.table}")
    for f in res.failures[:5]:
        click.echo(f"  failed cell {f['cell']} {f['params']} seed {f['seed']}: {f['error']}", err=True)
    write_results(json_path, res)
    write_tables(res, csv_path, parquet_path)
    if res.failures:
        raise click.exceptions.Exit(1)
