"""Run a grid: in this process, in local processes, or on a Dask cluster."""

from __future__ import annotations

import os
import socket
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .._display import Tabular
from .._distribute import connect
from .._frames import frame
from .._io import write_json
from .._progress import progress
from ._grid import Cell, Grid
from ._store import finished_keys, gather, store_record, write_table
from ._tasks import resolve_task


@dataclass
class SweepResult(Tabular):
    out: Path
    total: int
    skipped: int  # finished before this run
    ran: int
    failures: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    table: Path | None = None

    def to_dict(self) -> dict:
        return dict(out=str(self.out), total=self.total, skipped=self.skipped, ran=self.ran,
                    failures=self.failures, table=str(self.table) if self.table else None)

    def to_frame(self):
        """The gathered table, one row per finished cell: `cell`, the grid parameters, `seed`, the task's
        results, `time_s` (the cell's wall time; `seconds` in the written table)."""
        return frame([{("time_s" if k == "seconds" else k): v for k, v in r.items()} for r in self.rows])


def run_cell(task: str, cell: Cell, out: str) -> dict:
    """Run one cell and store it; returns its record. Runs on a worker.

    The worker writes the cell file itself (atomically) where `out` is reachable, so a
    finished cell survives even if the driver dies before hearing of it.
    """
    start = time.perf_counter()
    results = resolve_task(task)(seed=cell.seed, **cell.params)
    record = dict(key=cell.key, params=cell.params, seed=cell.seed, results=results,
                  seconds=time.perf_counter() - start,
                  run_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    try:
        store_record(Path(out), record)
    except OSError:
        pass  # no shared file system: the driver stores it
    return record


def run_sweep(grid: Grid, out: str | Path, workers: int | None = None, scheduler: str | None = None,
              table_name: str = "results.csv") -> SweepResult:
    """Run every unfinished cell of `grid`, store each as it finishes, gather the table.

    Arguments:
        workers: local processes (default: CPU count; 0 runs in this process).
        scheduler: address of a Dask scheduler (`tcp://host:8786`) to run on a cluster.
    """
    out = Path(out)
    resolve_task(grid.task)  # fail fast on a bad task name, before any work
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "grid.json", grid)
    cells = grid.cells()
    done = finished_keys(out)
    pending = [c for c in cells if c.key not in done]
    result = SweepResult(out, len(cells), len(cells) - len(pending), 0)
    bar = progress(total=len(cells), desc="cells", leave=True)
    bar.update(result.skipped)

    def finished(cell: Cell, record: dict | None, error: BaseException | None) -> None:
        if error is not None:
            result.failures.append(dict(cell=cell.key, params=cell.params, seed=cell.seed,
                                        error=f"{type(error).__name__}: {error}"))
        else:
            store_record(out, record)
            result.ran += 1
        bar.update()

    try:
        if scheduler:
            _run_dask(grid.task, pending, out, scheduler, finished)
        elif workers == 0:
            for cell in pending:
                try:
                    finished(cell, run_cell(grid.task, cell, str(out)), None)
                except Exception as exc:
                    finished(cell, None, exc)
        else:
            _run_processes(grid.task, pending, out, workers or os.cpu_count() or 1, finished)
    finally:
        bar.close()
        result.rows = gather(out, cells)
        if result.rows:
            result.table = write_table(result.rows, out / table_name)
    return result


def _run_processes(task, cells, out, workers, finished) -> None:
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_cell, task, c, str(out)): c for c in cells}
        try:
            while futures:
                ready, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in ready:
                    cell = futures.pop(fut)
                    exc = fut.exception()
                    finished(cell, None if exc else fut.result(), exc)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(task, cells, out, scheduler, finished) -> None:
    client = connect(scheduler)  # one-line errors: dask missing, scheduler unreachable
    from distributed import as_completed

    with client:
        futures = {client.submit(run_cell, task, c, str(out), key=f"cell-{c.key}-{uuid.uuid4().hex[:6]}",
                                 pure=False): c for c in cells}
        for fut in as_completed(list(futures), loop=client.loop):
            cell = futures[fut]
            exc = fut.exception()
            finished(cell, None if exc else fut.result(), exc)
