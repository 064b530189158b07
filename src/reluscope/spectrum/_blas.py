"""One BLAS thread for numpy's LAPACK calls made right after torch ops.

After a torch op, torch's OpenMP workers keep spinning for a while; a multithreaded
OpenBLAS call then fights them for the cores and runs 10-30x slower on a small machine
(measured: a 400x400 `eigvalsh` took 1.4 s instead of 0.04 s on 2 cores). The matrices
here are small enough that one thread is the fastest choice anyway.
"""

from __future__ import annotations

import contextlib


def one_blas_thread():
    """Context manager limiting BLAS to one thread (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
