"""`spectra` on a Dask cluster: one task per sample, merged into the local result.

Every path of `spectra` (exact chain, graph, matrix-free) treats the samples one at a time,
so `spectra(net, x)` equals the samples' one-sample spectra stacked in order. The only
per-sample state is the seed of the matrix-free start and probe vectors, `seed + SAMPLE_SEED_STRIDE·b`
for sample b (`_matfree.layer_spectra`), which each one-sample call is given.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

import numpy as np
import torch

from .._distribute import map_samples
from ._jacobians import as_batch, as_net, non_chain
from ._matfree import SAMPLE_SEED_STRIDE


def cluster_spectra(model_or_net, x: torch.Tensor, scheduler: str, **options):
    """`spectra(model_or_net, x, **options)` with each sample a task on the Dask scheduler
    at `scheduler`: the same `JacobianSpectra` (values, order, methods, notes), but for
    `seconds`, the wall time of the whole run."""
    start = time.perf_counter()
    graph = non_chain(model_or_net, x)
    target = graph if graph is not None else as_net(model_or_net, x)
    xb = as_batch(target, x, x.dtype if x.is_floating_point() else options.get("dtype") or torch.float64)
    items = [(b, xb[b:b + 1]) for b in range(xb.shape[0])]
    parts = map_samples(partial(_one_sample, target, options), items, scheduler=scheduler, chunk=1,
                        desc="spectra")
    return merge(parts, time.perf_counter() - start)


def _one_sample(target, options: dict, item):
    from ._spectra import spectra

    b, x1 = item
    seed = options.get("seed", 0) + SAMPLE_SEED_STRIDE * b
    return spectra(target, x1, **{**options, "seed": seed})


def merge(parts: list, seconds: float):
    """One `JacobianSpectra` from per-sample ones (same outputs, in sample order)."""
    first = parts[0]
    layers = []
    for j, s0 in enumerate(first.layers):
        col = [p.layers[j] for p in parts]

        def cat(name, col=col):
            return np.concatenate([getattr(c, name) for c in col])

        layers.append(replace(
            s0, singular_values=cat("singular_values"), rank=cat("rank"), condition=cat("condition"),
            active=None if s0.active is None else cat("active"), method=sum((c.method for c in col), ()),
            error_bound=cat("error_bound"),
            matfree=None if s0.matfree is None else sum((c.matfree for c in col), ())))
    return replace(first, layers=tuple(layers), samples=sum(p.samples for p in parts), seconds=seconds)
