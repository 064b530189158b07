"""Experiment grids: run any task over parameters and seeds, locally or on Dask."""

from ._grid import Cell, Grid, read_grid
from ._plots import plot_sweep
from ._run import SweepResult, run_cell, run_sweep
from ._store import finished_keys, gather, write_table
from ._tasks import TASKS, resolve_task

__all__ = ["Cell", "Grid", "SweepResult", "TASKS", "finished_keys", "gather", "plot_sweep",
           "read_grid", "resolve_task", "run_cell", "run_sweep", "write_table"]
