"""Map a function over samples: in this process, in local processes, or on a Dask cluster.

`map_samples(fn, items)` returns `[fn(item) for item in items]`, in input order, whichever
way it runs:

* `scheduler=None`, `workers=1`: a plain loop in this process;
* `scheduler=None`, more workers: a process pool on this machine (`fork` where available,
  so the function and its data reach the workers without a copy); each worker process
  runs BLAS on one thread, since the processes already fill the cores;
* `scheduler="tcp://host:8786"`: chunks of items as Dask tasks. The function is one task
  of its own (recomputable from the scheduler's copy, unlike scattered data) and every
  chunk a pure task with a deterministic key (`reluscope-<desc>-<token>-<chunk>`). When a
  worker dies, the scheduler reruns its unfinished chunks (and any finished ones whose
  results lived only there) elsewhere; results are gathered with `as_completed`, placed
  by index, and a chunk is never counted twice, so the output is the same list a local
  run gives. Worker processes need reluscope (and the modules defining `fn`) installed.

`fn` must be picklable: a module-level function or a `functools.partial` of one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from ._progress import progress
from .errors import ConfigError, DependencyError, ReluscopeError

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = 20.0  # seconds to reach a scheduler before giving up
MISSING_DASK = "--scheduler needs dask.distributed: pip install 'reluscope[cluster]'"


def default_workers() -> int:
    """CPU cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str, timeout: float | None = None):
    """A `distributed.Client` on the scheduler at `scheduler` (`tcp://host:8786`).

    Raises a `DependencyError` when dask.distributed is missing and a one-line
    `ConfigError` naming the address and the fix when no scheduler answers within
    `timeout` seconds (default `CONNECT_TIMEOUT`).
    """
    try:
        from distributed import Client
    except ImportError:
        raise DependencyError(MISSING_DASK) from None
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({why}); "
                          "check the address and that `dask scheduler` runs there, or leave out "
                          "--scheduler to run on this machine") from None


def map_samples(fn: Callable[[T], R], items: Sequence[T], *, scheduler: str | None = None,
                workers: int | None = None, chunk: int | None = None, desc: str = "samples",
                context: str | None = None) -> list[R]:
    """`[fn(item) for item in items]`, in input order, locally or on a Dask cluster.

    Arguments:
        fn: a picklable function of one item (module-level, or a `functools.partial`).
        items: the samples (a list, tuple, or an array whose rows are the samples).
        scheduler: address of a Dask scheduler (`tcp://host:8786`); None runs locally.
        workers: local processes (default: the available cores; 1 runs in this process).
            Ignored with a scheduler: the cluster's workers run the chunks.
        chunk: items per task (default: about four tasks per worker, at most 8 items per
            task locally and 64 on a cluster). It never changes the results.
        desc: label of the progress bar (and of the Dask task keys).
        context: multiprocessing start method for local processes (default: "fork" where
            available, else "spawn").

    Returns:
        The list of results, `result[i] = fn(items[i])`.

    >>> map_samples(abs, [-1, 2, -3], workers=1)
    [1, 2, 3]
    """
    items = list(items)
    if chunk is not None and chunk < 1:
        raise ConfigError(f"chunk must be >= 1, got {chunk}")
    if scheduler:
        return _map_dask(fn, items, scheduler, chunk, desc)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    workers = min(workers, len(items))
    if workers <= 1:
        return [fn(item) for item in progress(items, desc=desc, total=len(items))]
    return _map_processes(fn, items, workers, chunk, desc, context)


# -- local processes ----------------------------------------------------------------------
_WORKER: dict = {}


def _init_process(fn) -> None:
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(1)
    except ImportError:  # optional; numpy still works, only slower
        pass
    _WORKER["fn"] = fn


def _call(item):
    return _WORKER["fn"](item)


def _map_processes(fn, items, workers, chunk, desc, context) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if context is None:
        context = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    chunk = chunk or max(1, min(8, len(items) // (4 * workers)))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(context), initializer=_init_process,
                             initargs=(fn,)) as pool:
        return list(progress(pool.map(_call, items, chunksize=chunk), desc=desc, total=len(items)))


# -- a Dask cluster -----------------------------------------------------------------------
def _identity(x):
    return x


def _run_chunk(fn, chunk: list) -> list:
    return [fn(item) for item in chunk]


def _slug(desc: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", desc.lower()).strip("-")[:40] or "samples"


def _map_dask(fn, items, scheduler, chunk, desc) -> list:
    client = connect(scheduler)  # first: its errors name the fix
    from dask.base import tokenize
    from distributed import as_completed

    try:
        from distributed import KilledWorker
    except ImportError:  # older layouts
        from distributed.scheduler import KilledWorker

    with client:
        if not items:
            return []
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunk = chunk or max(1, min(64, math.ceil(len(items) / (4 * n_workers))))
        token = tokenize(fn, items, chunk)
        name = _slug(desc)
        shared = client.submit(_identity, fn, key=f"reluscope-fn-{token}", pure=True)
        futures = {}
        for c, lo in enumerate(range(0, len(items), chunk)):
            fut = client.submit(_run_chunk, shared, items[lo:lo + chunk], key=f"reluscope-{name}-{token}-{c}",
                                pure=True)
            futures[fut] = (c, lo)
        results: list = [None] * len(items)
        done: set[int] = set()
        bar = progress(total=len(items), desc=desc)
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                c, lo = futures[fut]
                if c in done:  # never place a chunk twice
                    continue
                try:
                    part = fut.result()
                except KilledWorker as exc:
                    raise ReluscopeError(f"chunk {c} of {desc} killed every worker it ran on ({exc}); too "
                                         "little memory per worker? try a smaller chunk") from None
                results[lo:lo + len(part)] = part
                done.add(c)
                bar.update(len(part))
                fut.release()
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            bar.close()
        return results
