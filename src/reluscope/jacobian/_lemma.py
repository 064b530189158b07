"""The lemma on removing weakly correlated rows (Behrmann et al. 2018, PAPERS.md §2).

A (m×n) has rows a_j; D_I zeroes the rows in I; M = m - |I|. Fix k in I with
a_k in N(D_I A)^⊥. If every kept row has |<a_j, a_k>| <= c ||a_k|| / sqrt(M), then the
smallest nonzero singular value of D_I A is at most c.

So the smallest admissible c for row k, c_k = sqrt(M) max_j |<a_j, a_k>| / ||a_k||, bounds
σ_min. The proof goes through the sharper ||A_K u_k|| (u_k = a_k/||a_k||), reported too.
When D_I A is rank deficient, a_k must lie in its row space; `projected_bound` uses
u = P a_k / ||P a_k|| instead (P the projector on the row space), which is valid for
every removed row and equals the lemma's bound when a_k is in the row space.

On a net, A is the Jacobian of a ReLU layer's pre-activation w.r.t. the input and I
its inactive units, so D_I A is the post-activation Jacobian whose spectrum `spectra`
reports. On a graph the same holds at every ReLU node: A is the Jacobian of the node it
reads (a convolution, a residual sum, ...) and D_I A that of the ReLU node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from .._display import Tabular
from .._frames import frame
from ..errors import ConfigError, ShapeError
from ._jacobians import (
    DEFAULT_MAX_BYTES,
    Output,
    as_batch,
    as_net,
    check_bytes,
    jacobians,
    non_chain,
    outputs,
    single_threaded,
)


@dataclass(frozen=True)
class LemmaCheck(Tabular):
    """The lemma's bound against the measured smallest nonzero singular value.

    Attributes:
        rows, inputs: m and n of A.
        kept: M, the rows not removed.
        candidates: removed rows k tried (a random subset when there are many; the
            lemma holds for each k, so fewer candidates only loosen the bound).
        applicable: candidates satisfying the hypothesis a_k ⊥ N(D_I A).
        sigma_min: smallest nonzero singular value of D_I A (NaN when D_I A = 0).
        rank: numerical rank of D_I A.
        c_bound: min over applicable k of c_k (inf when none applies).
        norm_bound: min over applicable k of ||A_K u_k|| (<= c_bound).
        projected_bound: min over all candidates of the row-space-projected c.
        holds: sigma_min <= c_bound and sigma_min <= projected_bound (up to rounding).
    """

    rows: int
    inputs: int
    kept: int
    candidates: int
    applicable: int
    sigma_min: float
    rank: int
    c_bound: float
    norm_bound: float
    projected_bound: float
    holds: bool

    @property
    def ratio(self) -> float:
        """sigma_min / projected_bound: how tight the (projected) bound is, <= 1."""
        return self.sigma_min / self.projected_bound if self.projected_bound > 0 else float("nan")

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["ratio"] = self.ratio
        return d


def lemma_check(A: torch.Tensor | np.ndarray, removed, candidates: int = 256,
                seed: int = 0) -> LemmaCheck:
    """Check the lemma on a matrix A and a set of removed rows (float64).

    Arguments:
        A: the m×n matrix.
        removed: boolean mask of length m (True = removed, in I) or row indices.
        candidates: at most this many removed rows k are tried (chosen with `seed`).

    >>> A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    >>> chk = lemma_check(A, [2])
    >>> chk.holds, round(chk.sigma_min, 3), chk.c_bound >= chk.sigma_min
    (True, 1.0, True)
    """
    A = torch.as_tensor(A, dtype=torch.float64)
    if A.dim() != 2:
        raise ShapeError(f"A must be a matrix, got shape {tuple(A.shape)}")
    m, n = A.shape
    rem = torch.zeros(m, dtype=torch.bool)
    removed = torch.as_tensor(removed)
    if removed.dtype == torch.bool:
        if removed.shape != (m,):
            raise ShapeError(f"removed mask has shape {tuple(removed.shape)}, expected ({m},)")
        rem = removed.clone()
    else:
        if removed.numel() and (removed.min() < 0 or removed.max() >= m):
            raise ShapeError(f"removed row indices must lie in [0, {m})")
        rem[removed.long()] = True
    if candidates < 1:
        raise ConfigError(f"candidates must be positive, got {candidates}")
    AK = A[~rem]
    M = AK.shape[0]
    eps = torch.finfo(torch.float64).eps
    # Spectrum and row space of A_K from the smaller Gram matrix.
    big = M >= n
    G = AK.T @ AK if big else AK @ AK.T
    with single_threaded():
        lam, vec = torch.linalg.eigh(G)
    lam_max = float(lam[-1]) if len(lam) else 0.0
    nz = lam > max(M, n) * eps * lam_max if lam_max > 0 else torch.zeros_like(lam, dtype=torch.bool)
    rank = int(nz.sum())
    sigma_min = float(lam[nz].min().sqrt()) if rank else float("nan")

    idx = rem.nonzero().squeeze(1)
    idx = idx[A[idx].norm(dim=1) > 0]
    if len(idx) > candidates:
        perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))
        idx = idx[perm[:candidates]].sort().values
    if len(idx) == 0 or M == 0:
        inf = float("inf")
        return LemmaCheck(m, n, M, len(idx), 0, sigma_min, rank, inf, inf, inf, True)
    ak = A[idx]  # (c, n)
    norms = ak.norm(dim=1)
    inner = AK @ ak.T  # (M, c): <a_j, a_k>
    if big:
        proj = (vec[:, nz].T @ ak.T).norm(dim=0)
    else:
        proj = ((vec[:, nz].T @ inner) ** 2 / lam[nz, None]).sum(0).sqrt()
    in_rowspace = proj >= norms * (1 - 1e-8)
    c = math.sqrt(M) * inner.abs().max(0).values
    c_k, norm_k = c / norms, inner.norm(dim=0) / norms
    applicable = int(in_rowspace.sum())
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    c_bound = float(torch.where(in_rowspace, c_k, inf).min())
    norm_bound = float(torch.where(in_rowspace, norm_k, inf).min())
    usable = proj > math.sqrt(eps) * norms
    projected = float(torch.where(usable, c / proj.clamp_min(1e-300), inf).min())
    slack = 1 + 1e-7
    holds = bool(rank == 0 or (sigma_min <= c_bound * slack and sigma_min <= projected * slack))
    return LemmaCheck(m, n, M, len(idx), applicable, sigma_min, rank, c_bound, norm_bound, projected,
                      holds)


@dataclass(frozen=True)
class LayerLemma(Tabular):
    """The lemma on one ReLU layer (or ReLU node of a graph) at one sample: A = Jacobian of
    the pre-activation; `output` is the post-activation output (the ReLU node)."""

    output: Output
    sample: int
    check: LemmaCheck

    def to_dict(self) -> dict:
        return dict(output=self.output.to_dict(), sample=self.sample, **self.check.to_dict())

    def to_frame(self):
        """One row: the output (`output` index, `layer` name, `stage`), `sample` and the check's numbers.
        A list from `lemma_checks` stacks with `reluscope.to_frame(checks)`."""
        o = self.output
        return frame([dict(output=o.index, layer=o.name, stage=o.stage, sample=self.sample,
                           **self.check.to_dict())])


def lemma_checks(model_or_net, x: torch.Tensor, layers: Iterable[int | str] | None = None,
                 candidates: int = 256, seed: int = 0,
                 max_bytes: float = DEFAULT_MAX_BYTES) -> list[LayerLemma]:
    """The lemma on every selected ReLU layer and sample of a net.

    A is the Jacobian of the layer's pre-activation with respect to the input (rows =
    units), I its inactive units, so D_I A is the post-activation Jacobian. Layers
    whose explicit Jacobian would exceed `max_bytes` raise a ResourceError: select
    layers with `layers=`.

    On a model that is not a chain (a `Graph`), `layers` picks ReLU nodes by name or
    position (default: every ReLU node; other nodes are skipped) and A is the Jacobian of
    the node each ReLU reads; all are taken from one forward sweep per sample.
    """
    graph = non_chain(model_or_net, x)
    if graph is not None:
        return _graph_lemma_checks(graph, x, layers, candidates, seed, max_bytes)
    net = as_net(model_or_net, x, torch.float64)
    xb = as_batch(net, x, torch.float64)
    relu = [o for o in outputs(net, layers) if o.stage == "pre" and net.layers[o.layer].is_relu]
    trace = net.trace(xb)
    result = []
    for o in relu:
        (pre,) = jacobians(net, xb, [o.layer], max_bytes=max_bytes, stages=("pre",)).values()
        post = next(out for out in outputs(net, [o.layer]) if out.stage == "post")
        z = trace.pre[o.layer]
        for b in range(xb.shape[0]):
            removed = z[b].reshape(-1) <= 0
            result.append(LayerLemma(post, b, lemma_check(pre[b], removed, candidates, seed)))
        del pre
    return result


def _graph_lemma_checks(graph, x, layers, candidates, seed, max_bytes) -> list[LayerLemma]:
    from ._graph_spectra import _sweep_sizes, cast, graph_outputs, input_chunks, node_jacobians

    graph = cast(graph, torch.float64)
    xb = as_batch(graph, x, torch.float64)
    relus = [o for o in graph_outputs(graph, layers) if graph.nodes[o.layer].is_relu]
    if not relus:
        return []
    pos = {node.name: i for i, node in enumerate(graph.nodes)}
    pre: dict[int, list[Output]] = {}  # pre-activation node -> the ReLU nodes reading it
    for o in relus:
        pre.setdefault(pos[graph.node(o.inputs[0]).name], []).append(o)
    n = math.prod(graph.input_shape)
    biggest = max(math.prod(graph.nodes[i].out_shape) for i in pre)
    peak, _ = _sweep_sizes(graph, input_chunks(graph.input_shape, 256), max(pre) + 1, torch.float64)
    # A, its kept rows and their Gram matrix, next to the sweep's live windows
    check_bytes(8 * (peak + 2 * biggest * n + min(biggest, n) ** 2), max_bytes, "the lemma checks")
    result = []
    with single_threaded():  # the sweep's operations are small; threads would wait for each other
        for b in range(xb.shape[0]):
            x1 = xb[b:b + 1]
            with torch.no_grad():
                values = graph.run(x1)
            for i, A in node_jacobians(graph, x1, pre, values=values):
                removed = values[graph.nodes[i].name].reshape(-1) <= 0
                check = lemma_check(A, removed, candidates, seed)
                result.extend(LayerLemma(o, b, check) for o in pre[i])
    result.sort(key=lambda r: (r.output.index, r.sample))
    return result
