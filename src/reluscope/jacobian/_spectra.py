"""Singular values of every layer's Jacobian at each sample (Behrmann et al., stability).

How it is fast:

* One forward-mode pass per chunk of input directions gives that chunk's columns of
  *every* layer's Jacobian (see `_jacobians.propagate`).
* Image inputs are chunked in spatial tiles, so a chunk's columns are nonzero only on
  the rows its receptive field reaches. Only those rows are kept, and the Gram matrix
  is assembled block by block from overlapping supports: early conv layers cost a few
  percent of a dense product, and the result is exact (skipped entries are exact zeros).
* The singular values come from the smaller Gram matrix (`J^T J` or `J J^T` over the
  rows that are ever nonzero, e.g. only the active units after a ReLU) with a
  symmetric eigensolver in float64, or from an SVD of the explicit Jacobian where the
  Gram matrix cannot give the accuracy asked for.

Accuracy (d = max(rows, inputs), eps = machine epsilon of the dtype, σ_1 the largest
singular value). To first order in eps:

* `gram`: |σ̂_i - σ_i| / σ_i <= d·eps·(σ_1/σ_i)^2. Values with σ_i^2 <= d·eps·σ_1^2 cannot
  be told from zero and are reported as exactly 0 (they set the numerical rank).
* `svd`: |σ̂_i - σ_i| / σ_i <= d·eps·σ_1/σ_i; values <= d·eps·σ_1 are reported as 0.
* `auto` (default): `gram`, unless its bound for the smallest nonzero singular value
  exceeds `rtol`; that layer and sample is then redone by `svd`. So every reported
  nonzero value has relative error <= max(rtol, svd bound).
The bound actually met is stored per layer and sample (`error_bound`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .._display import Tabular
from .._frames import frame
from .._progress import progress
from ..errors import ConfigError
from ._jacobians import (
    DEFAULT_MAX_BYTES,
    Output,
    as_batch,
    as_net,
    basis_window,
    check_bytes,
    input_chunks,
    non_chain,
    outputs,
    propagate_windows,
    single_threaded,
)

METHODS = ("auto", "exact", "gram", "svd", "lanczos")
DENSE_FILL = 0.5  # blocks filling more than this of J: one dense product beats block pairs


@dataclass(frozen=True)
class LayerSpectrum(Tabular):
    """Singular values of one layer output's Jacobian, per sample.

    Attributes:
        output: which output (layer, `pre`/`post`, 1-based index).
        inputs: input dimension n (columns of the Jacobian).
        singular_values: `(B, min(m, n))`, descending; values below the numerical
            resolution are exactly 0.
        rank: `(B,)` numerical rank (number of nonzero singular values).
        condition: `(B,)` σ_1 / σ_rank over the nonzero part (NaN for a zero Jacobian).
        active: `(B,)` units with a positive pre-activation in this layer (ReLU-like
            activations only, else None).
        method: `(B,)` `gram` or `svd`, the method that produced each sample's values.
        error_bound: `(B,)` first-order bound on the relative error of the smallest
            nonzero singular value (larger values are at least as accurate); for `lanczos`,
            the largest relative error bound of the top k values.
        estimated: False for the exact methods; True for `lanczos`, where `singular_values`
            holds only the top k (`(B, k)`), `rank` and `condition` are estimates and
            `matfree` has the details (bounds, smallest value, density) per sample.
        method_reason: why this method was used (`auto`), else empty.
        matfree: per sample, the `_matfree.MatfreeSpectrum` (`lanczos` only).
    """

    output: Output
    inputs: int
    singular_values: np.ndarray
    rank: np.ndarray
    condition: np.ndarray
    active: np.ndarray | None
    method: tuple[str, ...]
    error_bound: np.ndarray
    estimated: bool = False
    method_reason: str = ""
    matfree: tuple | None = None

    @property
    def label(self) -> str:
        return self.output.label

    @property
    def sigma_min(self) -> np.ndarray:
        """`(B,)` the smallest nonzero singular value (NaN where the rank is 0); for `lanczos`
        the smallest Ritz value, an upper bound unless `matfree[b].sigma_min_status` says more."""
        if self.matfree is not None:
            return np.array([r.sigma_min for r in self.matfree])
        return np.array([row[r - 1] if r else np.nan for row, r in zip(self.singular_values, self.rank)])

    def to_dict(self, values: bool = True) -> dict:
        d = dict(output=self.output.to_dict(), inputs=self.inputs, rank=self.rank,
                 condition=self.condition, active=self.active, method=list(self.method),
                 error_bound=self.error_bound)
        if self.estimated:
            d.update(estimated=True, method_reason=self.method_reason,
                     matfree=[r.to_dict() if values else {**r.to_dict(), "density": None}
                              for r in self.matfree])
        if values:
            d["singular_values"] = self.singular_values
        return d

    def frame_rows(self) -> list[dict]:
        """One row per sample: the output (`output` index, `layer` name, `stage`), `rank`, `condition`,
        the largest and smallest nonzero singular value, `active` units, `method`, `error_bound_rel`."""
        o, rows = self.output, []
        smin = self.sigma_min
        for b in range(len(self.rank)):
            r = int(self.rank[b])
            row = dict(output=o.index, layer=o.name, stage=o.stage, activation=o.activation,
                       outputs=o.size, inputs=self.inputs, sample=b, rank=r,
                       condition=float(self.condition[b]), sigma_max=float(self.singular_values[b, 0]),
                       sigma_min=float(smin[b]),
                       active=None if self.active is None else int(self.active[b]),
                       method=self.method[b], error_bound_rel=float(self.error_bound[b]),
                       estimated=self.estimated)
            if self.matfree is not None:
                mf = self.matfree[b]
                row.update(rank_se=mf.rank_se, rank_exact=mf.rank_exact, sigma_min_status=mf.sigma_min_status,
                           converged=mf.converged, steps=mf.steps, products=mf.products,
                           ks_bound=None if mf.density is None else mf.density.ks_bound)
            rows.append(row)
        return rows

    def to_frame(self):
        """One row per sample (see `frame_rows`)."""
        return frame(self.frame_rows())


@dataclass(frozen=True)
class JacobianSpectra(Tabular):
    """Per-layer singular value spectra of a net's linearisation at a batch of inputs."""

    layers: tuple[LayerSpectrum, ...]
    samples: int
    input_shape: tuple[int, ...]
    dtype: str
    method: str
    rtol: float
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> LayerSpectrum:
        """By output index (1-based, as in `Output.index`) or by `"name:stage"`."""
        for s in self.layers:
            o = s.output
            if key == o.index or key == f"{o.name}:{o.stage}":
                return s
        raise KeyError(f"no output {key!r}; outputs are {[s.output.index for s in self.layers]}")

    def to_dict(self, values: bool = True) -> dict:
        return dict(samples=self.samples, input_shape=list(self.input_shape), dtype=self.dtype,
                    method=self.method, rtol=self.rtol, seconds=self.seconds, notes=list(self.notes),
                    layers=[s.to_dict(values) for s in self.layers])

    def to_frame(self):
        """One row per layer output and sample (columns: `LayerSpectrum.frame_rows`)."""
        return frame([r for s in self.layers for r in s.frame_rows()])

    def _figures(self):
        from ._plots import decay_figure

        caption = ("Singular values of every output's Jacobian, layer by layer: look for where the smallest "
                   "ones fall towards zero (the inverse there is unstable)")
        yield decay_figure(self), caption


def spectra(model_or_net, x: torch.Tensor, layers: Iterable[int | str] | None = None,
            dtype: torch.dtype | None = None, method: str = "auto", rtol: float = 1e-6,
            chunk: int = 192, max_bytes: float = DEFAULT_MAX_BYTES, k: int = 20, probes: int = 16,
            seed: int = 0, scheduler: str | None = None, steps: int = 40,
            max_steps: int | None = None) -> JacobianSpectra:
    """Full singular values of every layer output's Jacobian w.r.t. the input.

    Arguments:
        model_or_net: an `nn.Module`, a `reluscope.nets.ReluNet` or a `Graph`. A model
            that is not a chain (residual adds, concatenations, smooth activations) takes
            the graph path (`_graph_spectra`): one `out` output per node, `layers` picks
            nodes by name or position in `graph.nodes`; a ReLU node's "before" is the node
            it reads (`Output.inputs`), whose spectrum is reported with the others.
        x: one sample `(*input_shape)` or a batch `(B, *input_shape)`.
        layers: layer indices or names (default: all). Each gives its `pre` output and,
            unless the activation is the identity, its `post` output.
        dtype: computing dtype; default float64 for the accuracy stated in the module
            docstring (the net is copied and cast, the model is untouched), except for the
            matrix-free outputs of an input of at least `_matfree.LARGE_INPUT` values (e.g.
            3×64×64, 3×224×224): float32 there, with the top k asked to at least
            `_matfree.FLOAT32_RTOL` (1e-4). Pass float64 to keep float64 throughout.
        method: `exact` (`gram`, or `svd` where the Gram matrix cannot give `rtol`), `gram`,
            `svd` (see the module docstring for their accuracy), `lanczos` (matrix-free,
            `_matfree`: the top `k` singular values to `rtol`, the smallest nonzero one or a
            bound, rank, condition and the density of J^T J, all marked `estimated`), or
            `auto` (default): `exact` for every layer whose dense computation fits
            `max_bytes`, `lanczos` for the rest; `notes` and `method_reason` say why.
        rtol: relative accuracy asked of the smallest nonzero singular value (exact) or of
            each of the top k (lanczos).
        chunk: input directions pushed at once (image inputs: rounded to spatial tiles).
        max_bytes: memory limit; the estimate is checked before any work and a
            `ResourceError` names the size and the fix (the exact methods), or the most the
            matrix-free bases may take (lanczos).
        k: `lanczos` only: how many of the largest singular values.
        probes: `lanczos` only: the probe vectors of the density (its error bars shrink as
            1/sqrt(probes); 0: no density).
        steps: `lanczos` only: Lanczos steps per density probe (fewer: cheaper, and the
            stated `ks_bound` widens: the largest quadrature weight grows as about 1/steps).
        max_steps: `lanczos` only: at most this many Golub–Kahan steps for the top k
            (default: what fits `max_bytes`, at most 10k + 300); `converged` and the bounds
            say what was reached.
        seed: `lanczos` only: the seed of the start and probe vectors.
        scheduler: address of a Dask scheduler (`tcp://host:8786`): one task per sample there
            (`_cluster`), the same results in the same order (`seconds`: the whole run's).

    Returns:
        A `JacobianSpectra` with one `LayerSpectrum` per output.

    >>> from reluscope import nets
    >>> _ = torch.manual_seed(0)
    >>> s = spectra(nets.mlp([3, 5, 2]), torch.randn(2, 3))
    >>> [tuple(l.singular_values.shape) for l in s], s[3].rank.tolist()
    ([(2, 3), (2, 3), (2, 2)], [2, 2])
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}'; use one of {', '.join(METHODS)}")
    if not rtol > 0:
        raise ConfigError(f"rtol must be positive, got {rtol}")
    if scheduler:  # cluster: one task per sample (reluscope._distribute), merged in order
        from ._cluster import cluster_spectra

        return cluster_spectra(model_or_net, x, scheduler, layers=layers, dtype=dtype, method=method,
                               rtol=rtol, chunk=chunk, max_bytes=max_bytes, k=k, probes=probes, seed=seed,
                               steps=steps, max_steps=max_steps)
    graph = non_chain(model_or_net, x)
    if method in ("auto", "lanczos"):
        from ._matfree import split_spectra

        split = split_spectra(model_or_net if graph is None else graph, graph is not None, x, layers,
                              torch.float64 if dtype is None else dtype, method, rtol, chunk, max_bytes, k,
                              probes, seed, steps=steps, max_steps=max_steps, matfree_dtype=dtype)
        if split is not None:
            return split
    dtype = torch.float64 if dtype is None else dtype
    label, method = method, "auto" if method == "exact" else method  # exact: gram, svd where needed
    if graph is not None:
        from dataclasses import replace

        from ._graph_spectra import graph_spectra

        return replace(graph_spectra(graph, x, layers, dtype, method, rtol, chunk, max_bytes), method=label)
    start = time.perf_counter()
    net = as_net(model_or_net, x, dtype)
    xb = as_batch(net, x, dtype)
    outs = outputs(net, layers)
    chunks = input_chunks(net.input_shape, chunk)
    check_bytes(estimate_bytes(net, outs, chunks, dtype), max_bytes, "the Jacobian spectra")
    per_sample = [
        _sample_spectra(net, xb[b:b + 1], outs, chunks, method, rtol, max_bytes)
        for b in progress(range(xb.shape[0]), desc="spectra", total=xb.shape[0])
    ]
    n = math.prod(net.input_shape)
    result = []
    for j, o in enumerate(outs):
        rows = [p[j] for p in per_sample]
        sv = np.stack([r["sv"] for r in rows])
        active = None if rows[0]["active"] is None else np.array([r["active"] for r in rows])
        result.append(LayerSpectrum(
            o, n, sv, np.array([r["rank"] for r in rows]), np.array([r["cond"] for r in rows]),
            active, tuple(r["method"] for r in rows), np.array([r["bound"] for r in rows])))
    return JacobianSpectra(tuple(result), xb.shape[0], net.input_shape, str(dtype).replace("torch.", ""),
                           label, rtol, time.perf_counter() - start)


# -- memory -------------------------------------------------------------------------------
def estimate_bytes(net, outs: list[Output], chunks: list[torch.Tensor],
                   dtype: torch.dtype = torch.float64) -> int:
    """Peak bytes of `spectra` for one sample, from the structural support of each chunk.

    The supports come from one pass of indicator vectors through |W| (a superset of the
    nonzero rows at any sample), so the estimate is an upper bound on the stored blocks;
    the Gram matrix, its eigensolver workspace and one chunk's tangents are added.
    """
    item = torch.tensor([], dtype=dtype).element_size()
    n = math.prod(net.input_shape)
    rows = structural_rows(net, chunks)
    stored = [sum(rows[(o.layer, o.stage)][a] * len(c) for a, c in enumerate(chunks)) for o in outs]
    dense = max(n * o.size if s >= DENSE_FILL * n * o.size else 0 for s, o in zip(stored, outs))
    gram = max(min(o.size, n) ** 2 for o in outs) * torch.get_num_threads()  # solved in parallel
    widest = max(math.prod(layer.out_shape) for layer in net.layers)
    tangents = 4 * max(len(c) for c in chunks) * widest
    return item * (sum(stored) + dense + 3 * gram + tangents)


def structural_rows(net, chunks: list[torch.Tensor]) -> dict[tuple[int, str], list[int]]:
    """For each layer output, how many of its units each chunk's inputs can reach."""
    dtype = net.dtype
    ind = torch.zeros(len(chunks), math.prod(net.input_shape), dtype=dtype, device=net.device)
    for a, cols in enumerate(chunks):
        ind[a, cols.to(net.device)] = 1
    h = ind.reshape(len(chunks), *net.input_shape)
    counts = {}
    with torch.no_grad():
        for i, layer in enumerate(net.layers):
            z = _abs_affine(layer, h)
            h = layer.activate(z)  # monotone activations keep a nonnegative support
            counts[(i, "pre")] = z.flatten(1).ne(0).sum(1).tolist()
            counts[(i, "post")] = h.flatten(1).ne(0).sum(1).tolist()
    return counts


def _abs_affine(layer, t: torch.Tensor) -> torch.Tensor:
    """The linear part of `layer` with |weights| (no bias): reach of nonnegative inputs."""
    w = layer.parameters()[0].abs().to(t.dtype)
    if layer.flatten:
        t = t.flatten(1)
    if layer.kind == "linear":
        return F.linear(t, w)
    if layer.kind == "locally_connected":
        m = layer.module
        oh, ow = m.out_size
        patches = F.unfold(t, m.kernel_size, stride=m.stride).transpose(1, 2).reshape(t.shape[0], oh, ow, -1)
        return torch.einsum("bhwk,hwok->bohw", patches, w)
    return F.conv2d(t, w, None, **layer.conv_args)


# -- one sample ---------------------------------------------------------------------------
def _sample_spectra(net, x1, outs, chunks, method, rtol, max_bytes) -> list[dict]:
    wanted = {(o.layer, o.stage): j for j, o in enumerate(outs)}
    stop = max(o.layer for o in outs) + 1
    blocks: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in outs]
    active: dict[int, int] = {}
    for cols in chunks:
        e = basis_window(net.input_shape, cols, x1.dtype, x1.device)
        for i, stage, value, t in propagate_windows(net, x1, e, stop):
            if stage == "pre" and net.layers[i].activation in ("relu", "leaky_relu"):
                active[i] = int((value > 0).sum())
            j = wanted.get((i, stage))
            if j is None:
                continue
            data = t.data.reshape(len(cols), -1)
            local = data.ne(0).any(0).nonzero().squeeze(1)
            # rows × chunk, row-major: the Gram step gathers whole rows
            blocks[j].append((t.flat_index()[local], data[:, local].T.contiguous()))
    n = math.prod(net.input_shape)
    widths = [len(c) for c in chunks]

    def one(j: int) -> dict:
        torch.set_num_threads(1)
        res = _spectrum(blocks[j], widths, outs[j].size, n, method, rtol, max_bytes)
        blocks[j] = []  # free as we go
        res["active"] = active.get(outs[j].layer)
        return res

    # Symmetric eigensolvers scale poorly over threads (and collapse on a busy machine):
    # run one single-threaded solve per core instead, largest first.
    order = sorted(range(len(outs)), key=lambda j: -sum(b.numel() for _, b in blocks[j]))
    with single_threaded() as workers, ThreadPoolExecutor(workers) as pool:
        done = dict(zip(order, pool.map(one, order)))
    return [done[j] for j in range(len(outs))]


def _spectrum(blocks, widths, m: int, n: int, method: str, rtol: float, max_bytes: float) -> dict:
    """Singular values of the m×n Jacobian given as column blocks restricted to their rows."""
    union = torch.unique(torch.cat([r for r, _ in blocks]))
    return _solve(len(union), m, n, blocks[0][1].dtype, lambda: _gram(blocks, widths, union, m, n),
                  lambda: _explicit(blocks, widths, union, m, n), method, rtol, max_bytes)


def _solve(mu: int, m: int, n: int, dtype, gram, explicit, method: str, rtol: float,
           max_bytes: float, n_full: int | None = None) -> dict:
    """Singular values of an m×n Jacobian with `mu` rows ever nonzero, from `gram()` (its
    smaller Gram matrix) or `explicit()` (the matrix itself, any orientation).

    `n_full`: the input dimension when the n columns are the Jacobian times an orthonormal
    basis of its row space (same singular values); it sets the resolution and the length.
    """
    eps = torch.finfo(dtype).eps
    n_full = n if n_full is None else n_full
    k = min(m, n_full)
    d = max(mu, n_full)
    sv = np.zeros(k)
    if mu == 0:
        return dict(sv=sv, rank=0, cond=float("nan"), method="gram", bound=0.0)
    used = method
    if method in ("auto", "gram"):
        lam = torch.linalg.eigvalsh(gram()).flip(0)
        lam_max = float(lam[0])
        rank = int((lam > d * eps * lam_max).sum()) if lam_max > 0 else 0
        s = lam[:rank].clamp_min(0).sqrt()
        bound = d * eps * float(s[0] / s[-1]) ** 2 if rank else 0.0
        used = "gram"
        if method == "auto" and bound > rtol:
            need = n * mu * torch.tensor([], dtype=dtype).element_size() * 2
            if need <= max_bytes:
                used = "svd"
    if used == "svd":
        s = torch.linalg.svdvals(explicit())
        smax = float(s[0])
        rank = int((s > d * eps * smax).sum()) if smax > 0 else 0
        s = s[:rank]
        bound = d * eps * float(s[0] / s[-1]) if rank else 0.0
    sv[:rank] = s.cpu().numpy()
    cond = float(sv[0] / sv[rank - 1]) if rank else float("nan")
    return dict(sv=sv, rank=rank, cond=cond, method=used, bound=bound)


def _explicit(blocks, widths, union, m, n) -> torch.Tensor:
    """The Jacobian restricted to its nonzero rows, columns in chunk order: (n, |union|)."""
    pos = torch.full((m,), -1, dtype=torch.long, device=union.device)
    pos[union] = torch.arange(len(union), device=union.device)
    dtype = blocks[0][1].dtype
    J = torch.zeros(n, len(union), dtype=dtype, device=union.device)
    off = 0
    for (rows, blk), w in zip(blocks, widths):
        J[off:off + w, pos[rows]] = blk.T
        off += w
    return J


def _gram(blocks, widths, union, m: int, n: int) -> torch.Tensor:
    """The smaller Gram matrix of the Jacobian (columns permuted to chunk order)."""
    fill = sum(blk.numel() for _, blk in blocks) / (n * len(union))
    if len(union) < n or fill >= DENSE_FILL:  # dense: J J^T over the rows ever nonzero, or J^T J
        J = _explicit(blocks, widths, union, m, n)
        return J.T @ J if len(union) < n else J @ J.T
    # J^T J block by block: blocks a, b only meet on the rows both reach.
    dtype, dev = blocks[0][1].dtype, blocks[0][1].device
    G = torch.zeros(n, n, dtype=dtype, device=dev)
    offs = np.concatenate([[0], np.cumsum(widths)])
    pos = []
    for rows, _ in blocks:
        p = torch.full((m,), -1, dtype=torch.long, device=dev)
        p[rows] = torch.arange(len(rows), device=dev)
        pos.append(p)
    for a, (rows_a, blk_a) in enumerate(blocks):
        sa = slice(offs[a], offs[a + 1])
        for b in range(a, len(blocks)):
            rows_b, blk_b = blocks[b]
            if len(rows_a) == len(rows_b) == m:
                prod = blk_a.T @ blk_b
            else:
                ia = (pos[b][rows_a] >= 0).nonzero().squeeze(1)
                if len(ia) == 0:
                    continue
                ib = pos[b][rows_a[ia]]
                prod = blk_a.index_select(0, ia).T @ blk_b.index_select(0, ib)
            sb = slice(offs[b], offs[b + 1])
            G[sa, sb] = prod
            if b != a:
                G[sb, sa] = prod.T
    return G
