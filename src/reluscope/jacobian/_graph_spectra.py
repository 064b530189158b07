"""Jacobians and their spectra at every node of a non-chain graph (residual adds,
concatenations, smooth activations), exact in float64.

How it is fast (ResNet-20 on a 3×32×32 image: bench/bench_graph_jacobian.py):

* One forward-mode sweep, node by node (`TangentSweep`): the Jacobian columns of *all*
  input directions are pushed through each node once, so every node's Jacobian is
  computed exactly once and dropped as soon as no later node reads it. Linear nodes apply
  their linear part (`node.apply(..., bias=False)`), a ReLU multiplies by its 0/1 pattern
  (PyTorch's convention, derivative 0 at 0), other elementwise activations by their
  derivative, anything else goes through `torch.func.jvp`.
* Image inputs are cut into spatial tiles (`input_chunks`); a tile's columns are nonzero
  only on a window of each feature map, so convolutions, batch norms, residual adds,
  channel concatenations and activations compute just that window (`Window`), which saves
  most of the work of early layers; the Gram matrix of a sparse Jacobian is assembled
  block by block from overlapping supports, as on a chain.
* After a node that every later node reads through (a block output) and whose Jacobian
  has fewer nonzero rows than there are directions (a ReLU with few active units), the
  directions become an orthonormal basis of that Jacobian's row space: every later
  Jacobian J is computed as J Q, which has the same singular values, with fewer columns.
* Small nodes after the last large one (a pooled feature vector, the logits) take reverse
  mode instead: one backward pass per row.
* Each node is handed to the chain path's solver (`_spectra._solve`: the smaller Gram
  matrix, half of it computed, and a float64 symmetric eigensolver, or an SVD where the
  Gram matrix cannot give `rtol`, with the same rank, condition and error bound) on a pool
  of single-threaded workers while the sweep goes on.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ._jacobians import (
    DEFAULT_MAX_BYTES,
    Output,
    Window,
    _affine_window,
    as_batch,
    basis_window,
    check_bytes,
    input_chunks,
    single_threaded,
)
from ._spectra import DENSE_FILL

RELU_LIKE = ("relu", "leaky_relu")
# activations whose Jacobian is diagonal: the tangent is multiplied by f'(z)
ELEMENTWISE = ("relu", "leaky_relu", "relu6", "hardtanh", "gelu", "silu", "elu", "tanh", "sigmoid",
               "softplus")
SMALL_FRACTION = 4  # reverse mode for trailing nodes with at most n / SMALL_FRACTION rows together
COMPRESS = 0.8  # change to a row-space basis when it has at most this fraction of the directions


def graph_outputs(graph, nodes: Iterable[int | str] | None = None) -> list[Output]:
    """One `out` Output per selected node (default: every node but the input).

    Nodes are picked by name or by position in `graph.nodes`; `Output.layer` and
    `Output.index` are that position, `Output.inputs` the names of the nodes it reads.
    """
    if nodes is None:
        picked = list(range(1, len(graph.nodes)))
    else:
        keys = [nodes] if isinstance(nodes, (int, str)) else list(nodes)
        if not keys:
            raise ConfigError("no nodes selected; pass layers=None for all nodes")
        pos = {n.name: i for i, n in enumerate(graph.nodes)}
        picked = set()
        for k in keys:
            if isinstance(k, str) and k.lstrip("-").isdigit() and k not in pos:
                k = int(k)
            if isinstance(k, str):
                i = pos[graph.node(k).name]
            elif isinstance(k, int) and -len(graph.nodes) < k < len(graph.nodes):
                i = k % len(graph.nodes)
            else:
                raise ConfigError(f"no node {k!r}; pick nodes by name or by position "
                                  f"1..{len(graph.nodes) - 1}")
            if i == 0:
                raise ConfigError("the input node has the identity as Jacobian; pick a later node")
            picked.add(i)
        picked = sorted(picked)
    out = []
    for i in picked:
        node = graph.nodes[i]
        act = node.kind if node.op == "activation" else "identity"
        out.append(Output(i, i, node.name, "out", tuple(node.out_shape), act, tuple(node.inputs)))
    return out


def cast(graph, dtype: torch.dtype):
    """The graph in `dtype`: itself, or a deep copy (model included) cast in place, which is
    what `graph.copy(dtype=...)` gives without tracing the model again."""
    if graph.dtype == dtype:
        return graph
    graph = copy.deepcopy(graph)
    graph.model.to(dtype=dtype)
    return graph


# -- the forward sweep -------------------------------------------------------------------
def _last_uses(nodes) -> dict[str, int]:
    last = {}
    for i, node in enumerate(nodes):
        for k in node.inputs:
            last[k] = i
    return last


def _fresh(node) -> bool:
    """The node's tangents are new tensors (no view of another node's): safe to update in place."""
    return node.op == "affine" or (node.op == "join" and node.kind in ("add", "cat") and len(node.inputs) > 1)


class TangentSweep:
    """Push every input direction through the graph, node by node.

    Iterating yields `(position, node, windows)` for every node before `stop`: `windows[c]`
    holds the node's Jacobian applied to the directions of chunk c, `(widths[c], *window)`,
    zero outside the window. They are valid until the next step (a ReLU may update its
    input's in place); copy what you keep. `values` are the node outputs at `x1`
    (`graph.run`). `dry=True` pushes no numbers (zero directions per chunk): the windows'
    shapes only.

    The directions start as the unit vectors of `chunks`. With `compress=True`, after a
    node that every later node reads through (nothing else is still needed) and whose
    Jacobian has only `mu` nonzero rows, well below the current number of directions, the
    directions become an orthonormal basis `Q` of that Jacobian's row space (QR of its
    transpose): every later Jacobian `J` is then seen as `J Q`, which has the same singular
    values because J's rows lie in that row space. `widths` and `directions` give the
    current directions at each step.
    """

    def __init__(self, graph, x1: torch.Tensor, chunks: list[torch.Tensor], values, stop: int | None = None,
                 dry: bool = False, compress: bool = False):
        self.graph, self.x1, self.chunks, self.values = graph, x1, chunks, values
        self.stop, self.dry, self.compress = stop, dry, compress
        self.widths = [len(c) for c in chunks]
        self.compressed: list[tuple[str, int]] = []  # (node, directions after it)
        self.last_support = None

    def prepare(self, windows: list[Window], m: int) -> Prepared:
        """`prepare` for the node just yielded (its support is kept for the compression)."""
        self.last_support = support(windows, self.widths)
        return prepare(windows, list(self.widths), m, supp=self.last_support)

    @property
    def directions(self) -> int:
        return sum(self.widths)

    def __iter__(self) -> Iterator[tuple[int, object, list[Window]]]:
        graph, x1, dry = self.graph, self.x1, self.dry
        nodes = graph.nodes[:self.stop]
        last = _last_uses(nodes)
        dtype, dev = x1.dtype, x1.device
        make = _dry_basis if dry else basis_window
        env = {nodes[0].name: [make(graph.input_shape, cols, dtype, dev) for cols in self.chunks]}
        for i, node in enumerate(nodes[1:], 1):
            ins = [env[k] for k in node.inputs]
            src = graph.node(node.inputs[0]) if node.inputs else None
            inplace = (node.op == "activation" and last.get(node.inputs[0]) == i and src is not None
                       and _fresh(src) and node.inputs.count(node.inputs[0]) == 1)
            with torch.no_grad():  # not held across the yield: the caller keeps its grad mode
                deriv = None if dry else _derivative(node, self.values)
                env[node.name] = [_step(node, [t[c] for t in ins], self.values, deriv, inplace, dry)
                                  for c in range(len(self.widths))]
            for k in set(node.inputs):
                if last[k] == i:
                    env.pop(k)
            self.last_support = None
            yield i, node, env[node.name]
            if node.name not in last:
                env.pop(node.name)
            elif self.compress and not dry and set(env) == {node.name}:
                with torch.no_grad():
                    env[node.name] = self._compress(node, env[node.name])

    def _compress(self, node, windows: list[Window]) -> list[Window]:
        m = math.prod(node.out_shape)
        supp = self.last_support if self.last_support is not None else support(windows, self.widths)
        union, fill = supp[2], supp[3]
        mu = len(union)
        if mu > COMPRESS * self.directions or fill < DENSE_FILL:
            return windows
        E = prepare(windows, self.widths, m, dense=True, supp=supp).payload
        R = torch.linalg.qr(E, mode="r")[1]  # E = Q R, Q: directions × mu, orthonormal columns
        T = R.new_zeros(mu, m)
        T[:, union] = R  # direction q_j maps to row j of R on the nonzero rows
        T = T.reshape(mu, *node.out_shape)
        width = max(self.widths)
        self.widths = [min(width, mu - s) for s in range(0, mu, width)]
        self.compressed.append((node.name, mu))
        return [Window.whole(T[s:s + width]) for s in range(0, mu, width)]


def _dry_basis(shape, cols, dtype, dev) -> Window:
    w = basis_window(shape, cols, dtype, dev)
    return Window(w.data[:0], w.shape, w.r0, w.c0)


def _derivative(node, values) -> torch.Tensor | None:
    """f'(z) at the sample for an elementwise activation other than (leaky) ReLU, else None."""
    if node.op != "activation" or node.kind in RELU_LIKE or node.kind not in ELEMENTWISE:
        return None
    z = values[node.inputs[0]]
    return torch.func.jvp(node.module, (z,), (torch.ones_like(z),))[1]


def _step(node, ts: list[Window], values, deriv, inplace: bool, dry: bool) -> Window:
    """One node's tangent window from its inputs' windows (one chunk)."""
    if node.op == "affine":
        layer = node.layer
        t = ts[0]
        if layer.kind == "batchnorm" and t.data.dim() == 4 and not layer.flatten:
            return Window(layer.affine(t.data, bias=False), t.shape, t.r0, t.c0)
        return _affine_window(layer, t)
    if node.op == "join":
        box = _union_box(node, ts)
        if box is None:
            return Window.whole(node.apply(*(t.full() for t in ts), bias=False))
        r0, c0, h, w = box
        out = node.apply(*(_embed(t, r0, c0, h, w) for t in ts), bias=False)
        return Window(out, tuple(node.out_shape), r0, c0)
    if node.op == "activation":
        t = ts[0]
        if node.kind in ELEMENTWISE:
            if dry:
                return t
            z = t.crop(values[node.inputs[0]])
            if node.kind == "relu":
                factor = z > 0
            elif node.kind == "leaky_relu":
                factor = torch.where(z > 0, 1.0, node.module.negative_slope).to(t.data.dtype)
            else:
                factor = t.crop(deriv)
            data = t.data.mul_(factor) if inplace else t.data * factor
            return Window(data, t.shape, t.r0, t.c0)
        if dry:
            return Window.whole(t.data.new_zeros(0, *node.out_shape))
        z = values[node.inputs[0]]

        def one(v):
            return torch.func.jvp(node.module, (z,), (v.unsqueeze(0),))[1].squeeze(0)

        return Window.whole(torch.func.vmap(one)(t.full()))
    return ts[0]


def _union_box(node, ts: list[Window]) -> tuple[int, int, int, int] | None:
    """The bounding box of the inputs' windows when the join is spatially local
    (add, scale, channel cat of feature maps of one size), else None."""
    cat = node.kind == "cat" and node.params.get("dim") in (1, -3)
    if not (node.kind in ("add", "scale") or cat):
        return None
    if any(len(t.shape) != 3 or t.data.dim() != 4 or t.shape[1:] != ts[0].shape[1:] for t in ts):
        return None
    if len(node.out_shape) != 3 or tuple(node.out_shape[1:]) != tuple(ts[0].shape[1:]):
        return None
    r0 = min(t.r0 for t in ts)
    c0 = min(t.c0 for t in ts)
    r1 = max(t.r0 + t.data.shape[2] for t in ts)
    c1 = max(t.c0 + t.data.shape[3] for t in ts)
    return r0, c0, r1 - r0, c1 - c0


def _embed(t: Window, r0: int, c0: int, h: int, w: int) -> torch.Tensor:
    """The window's data placed in the larger box `r0:r0+h, c0:c0+w` (zeros around)."""
    k, c, hh, ww = t.data.shape
    if (t.r0, t.c0, hh, ww) == (r0, c0, h, w):
        return t.data
    out = t.data.new_zeros(k, c, h, w)
    out[:, :, t.r0 - r0:t.r0 - r0 + hh, t.c0 - c0:t.c0 - c0 + ww] = t.data
    return out


@dataclass
class Prepared:
    """One node's Jacobian copied out of the sweep, restricted to the rows ever nonzero.

    `kind` is `blocks` (per chunk: the rows and a rows × chunk block) or `dense` (`E`, the
    `(directions, mu)` transposed Jacobian, columns ordered as `union`); `fill` is the share
    of `directions × mu` the windows store.
    """

    kind: str
    payload: object
    union: torch.Tensor
    fill: float

    @property
    def mu(self) -> int:
        return len(self.union)


def support(windows: list[Window], widths: list[int]) -> tuple[list, list, torch.Tensor, float]:
    """Per chunk the rows ever nonzero (flat indices, and positions in the window); their
    union; the share of `directions × union` they fill."""
    rows, locals_ = [], []
    for t in windows:
        data = t.data.reshape(t.data.shape[0], -1)
        local = data.ne(0).any(0).nonzero().squeeze(1)
        rows.append(t.flat_index()[local])
        locals_.append(local)
    union = torch.unique(torch.cat(rows))
    fill = sum(len(r) * w for r, w in zip(rows, widths)) / max(1, sum(widths) * len(union))
    return rows, locals_, union, fill


def prepare(windows: list[Window], widths: list[int], m: int, dense: bool = False, supp=None) -> Prepared:
    """Copy a node's Jacobian out of the sweep: as blocks when the stored rows fill less than
    `DENSE_FILL` of a tall Jacobian (early convolutions: `_spectra._gram` adds block pairs on
    common rows), else (or with `dense=True`) as one dense matrix. `supp`: `support()` of
    these windows, when already known."""
    n = sum(widths)
    rows, locals_, union, fill = supp or support(windows, widths)
    mu = len(union)
    if not dense and mu >= n and fill < DENSE_FILL:
        blocks = [(r, t.data.reshape(t.data.shape[0], -1).index_select(1, loc).T.contiguous())
                  for t, r, loc in zip(windows, rows, locals_)]
        return Prepared("blocks", blocks, union, fill)
    first = windows[0].data
    E = first.new_empty(n, mu)
    pos = torch.full((m,), -1, dtype=torch.long, device=first.device)
    pos[union] = torch.arange(mu, device=first.device)
    off = 0
    for t, r, loc, w in zip(windows, rows, locals_, widths):
        data = t.data.reshape(w, -1)
        if len(r) == mu == data.shape[1]:
            E[off:off + w] = data  # every row of a whole window, in order
        else:
            E[off:off + w].zero_()
            E[off:off + w].index_copy_(1, pos[r], data.index_select(1, loc))
        off += w
    return Prepared("dense", E, union, fill)


def solve(prep: Prepared, widths: list[int], m: int, n_full: int, method: str, rtol: float,
          max_bytes: float) -> dict:
    """`_spectra._solve` on a prepared node: the block Gram, or the dense Gram of `E`."""
    from ._spectra import _solve

    n, mu = sum(widths), prep.mu
    if prep.kind == "blocks":
        from ._spectra import _explicit, _gram

        blocks, union = prep.payload, prep.union
        return _solve(mu, m, n, blocks[0][1].dtype, lambda: _gram(blocks, widths, union, m, n),
                      lambda: _tall(_explicit(blocks, widths, union, m, n)), method, rtol, max_bytes, n_full)
    E = prep.payload
    return _solve(mu, m, n, E.dtype, lambda: gram_of(E.T if mu < n else E), lambda: _tall(E), method, rtol,
                  max_bytes, n_full)


def _tall(A: torch.Tensor) -> torch.Tensor:
    """`A` or its transpose, whichever has more rows, contiguous: LAPACK's SVD of a row-major
    matrix takes about twice as long when it is wide."""
    return A if A.shape[0] >= A.shape[1] else A.T.contiguous()


def gram_of(A: torch.Tensor, parts: int = 6) -> torch.Tensor:
    """`A @ A.T` computing only the lower block triangle (about 60% of the products)."""
    r = A.shape[0]
    if r < 512:
        return A @ A.T
    G = A.new_empty(r, r)
    cut = [(i * r) // parts for i in range(parts + 1)]
    for a in range(parts):
        sa = slice(cut[a], cut[a + 1])
        for b in range(a + 1):
            sb = slice(cut[b], cut[b + 1])
            block = A[sa] @ A[sb].T
            G[sa, sb] = block
            if a != b:
                G[sb, sa] = block.T
    return G


# -- reverse mode for small trailing nodes -----------------------------------------------
def reverse_jacobian(graph, x1: torch.Tensor, name: str) -> torch.Tensor:
    """d node / d input at `x1` (batch of one) by reverse mode, one backward pass per row
    through the recorded forward: `(m, n)`. For small nodes (a pooled feature vector, the
    logits) this is cheaper than pushing every input direction forward."""
    stop = next(i for i, node in enumerate(graph.nodes) if node.name == name) + 1
    with torch.enable_grad():
        xin = x1.detach().clone().requires_grad_(True)
        y = _run_upto(graph, xin, {name}, stop)[name].reshape(-1)
        rows = [torch.autograd.grad(y[i], xin, retain_graph=i + 1 < y.numel(), allow_unused=True)[0]
                for i in range(y.numel())]
    return torch.stack([torch.zeros_like(x1) if r is None else r for r in rows]).reshape(len(rows), -1)


def _run_upto(graph, x: torch.Tensor, keep: set[str], stop: int) -> dict[str, torch.Tensor]:
    """`graph.run(x, keep)` that stops after node `stop - 1` and frees what no later node reads."""
    nodes = graph.nodes[:stop]
    last = _last_uses(nodes)
    env = {nodes[0].name: x.reshape(x.shape[0], *graph.input_shape)}
    out = {k: env[k] for k in keep if k in env}
    for i, node in enumerate(nodes[1:], 1):
        env[node.name] = node.apply(*(env[k] for k in node.inputs))
        if node.name in keep:
            out[node.name] = env[node.name]
        for k in node.inputs:
            if last[k] == i:
                env.pop(k, None)
    return out


def _plan(graph, outs: list[Output], n: int) -> tuple[int, set[int]]:
    """Where the forward sweep stops and which outputs take reverse mode instead: the
    trailing small outputs after the last large one, when their rows together are few."""
    large = [o.layer for o in outs if o.size * SMALL_FRACTION > n]
    last_large = max(large, default=0)
    tail = [j for j, o in enumerate(outs) if o.layer > last_large]
    if tail and sum(outs[j].size for j in tail) * SMALL_FRACTION <= n:
        return last_large + 1, set(tail)
    return max(o.layer for o in outs) + 1, set()


def _sweeps(outs: list[Output], stop: int) -> bool:
    """Whether a forward sweep runs: some output lies before `stop` (else all go by reverse mode)."""
    return any(o.layer < stop for o in outs)


# -- memory ---------------------------------------------------------------------------------
def _sweep_sizes(graph, chunks: list[torch.Tensor], stop: int, dtype) -> tuple[int, dict[int, int]]:
    """Elements of the live windows at the sweep's worst step, and of each node's windows
    (from a sweep that pushes no numbers: exact window shapes, no compression)."""
    n = math.prod(graph.input_shape)
    x1 = torch.zeros(1, *graph.input_shape, dtype=dtype, device=graph.device)
    live: dict[str, int] = {graph.input.name: n * n}
    last = _last_uses(graph.nodes[:stop])
    peak, sizes = n * n, {}
    for i, node, windows in TangentSweep(graph, x1, chunks, None, stop, dry=True):
        elems = sum(len(c) * math.prod(w.data.shape[1:]) for c, w in zip(chunks, windows))
        live[node.name] = sizes[i] = elems
        peak = max(peak, sum(live.values()))
        for k in set(node.inputs):
            if last[k] == i:
                live.pop(k, None)
        if node.name not in last:
            live.pop(node.name, None)
    return peak, sizes


def estimate_graph_bytes(graph, outs: list[Output], chunks: list[torch.Tensor], dtype=torch.float64,
                         workers: int = 1) -> int:
    """Peak bytes of `graph_spectra` for one sample: the live windows at the sweep's worst
    step, plus, for `workers` solves at once and one node waiting, a node's copied rows,
    the copy the solver may make and the Gram matrix with its eigensolver workspace."""
    item = torch.tensor([], dtype=dtype).element_size()
    n = math.prod(graph.input_shape)
    stop, reverse = _plan(graph, outs, n)
    peak, sizes = _sweep_sizes(graph, chunks, stop, dtype) if _sweeps(outs, stop) else (0, {})
    selected = [outs[j].size * n if j in reverse else sizes[o.layer] for j, o in enumerate(outs)]
    gram = max(min(o.size, n) ** 2 for o in outs)
    waiting = sorted(selected, reverse=True)[:workers + 1]
    return item * (peak + 2 * sum(waiting) + 3 * gram * workers)


# -- spectra --------------------------------------------------------------------------------
def graph_spectra(graph, x: torch.Tensor, layers=None, dtype: torch.dtype = torch.float64,
                  method: str = "auto", rtol: float = 1e-6, chunk: int = 192,
                  max_bytes: float = DEFAULT_MAX_BYTES, compress: bool = True):
    """`spectra` for a non-chain `Graph`: one `LayerSpectrum` per node output (stage `out`)."""
    from ._spectra import JacobianSpectra, LayerSpectrum

    start = time.perf_counter()
    graph = cast(graph, dtype)
    xb = as_batch(graph, x, dtype)
    outs = graph_outputs(graph, layers)
    n = math.prod(graph.input_shape)
    chunks = input_chunks(graph.input_shape, chunk)
    workers = torch.get_num_threads()
    check_bytes(estimate_graph_bytes(graph, outs, chunks, dtype, workers), max_bytes,
                "the graph Jacobian spectra")
    stop, reverse = _plan(graph, outs, n)
    notes: list[str] = []
    per_sample = [_sample(graph, xb[b:b + 1], outs, chunks, stop, reverse, method, rtol, max_bytes,
                          compress, notes)
                  for b in range(xb.shape[0])]
    result = []
    for j, o in enumerate(outs):
        rows = [p[j] for p in per_sample]
        active = None if rows[0]["active"] is None else np.array([r["active"] for r in rows])
        result.append(LayerSpectrum(
            o, n, np.stack([r["sv"] for r in rows]), np.array([r["rank"] for r in rows]),
            np.array([r["cond"] for r in rows]), active, tuple(r["method"] for r in rows),
            np.array([r["bound"] for r in rows])))
    swept = len(outs) - len(reverse)
    head = (f"graph path: {swept} node(s) from one forward sweep over {len(chunks)} input chunk(s) "
            f"({stop - 1} nodes swept), {len(reverse)} by reverse mode")
    return JacobianSpectra(tuple(result), xb.shape[0], graph.input_shape, str(dtype).replace("torch.", ""),
                           method, rtol, time.perf_counter() - start, notes=(head, *notes))


def _sample(graph, x1, outs, chunks, stop, reverse, method, rtol, max_bytes, compress, notes) -> list[dict]:
    n = math.prod(graph.input_shape)
    by_layer = {o.layer: j for j, o in enumerate(outs)}
    active: dict[int, int] = {}

    def work(j, prep, widths):
        torch.set_num_threads(1)
        res = solve(prep, widths, outs[j].size, n, method, rtol, max_bytes)
        res["active"] = active.get(outs[j].layer)
        return res

    done: dict[int, dict] = {}
    # Symmetric eigensolvers scale poorly over threads: one single-threaded solve per core,
    # next to the sweep (single-threaded too: its operations are small, and threads that
    # wait for each other cost most on shared cores), with at most one node per worker waiting.
    with single_threaded() as workers, ThreadPoolExecutor(workers) as pool:
        with torch.no_grad():
            values = graph.run(x1)
        for o in outs:
            node = graph.nodes[o.layer]
            if node.op == "activation" and node.kind in RELU_LIKE:
                active[o.layer] = int((values[node.inputs[0]] > 0).sum())
        pending = {}

        def submit(j, prep, widths):
            while len(pending) >= workers:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    done[pending.pop(f)] = f.result()
            pending[pool.submit(work, j, prep, widths)] = j

        if _sweeps(outs, stop):
            sweep = TangentSweep(graph, x1, chunks, values, stop, compress=compress)
            for i, _, windows in sweep:
                j = by_layer.get(i)
                if j is not None and j not in reverse:
                    submit(j, sweep.prepare(windows, outs[j].size), list(sweep.widths))
            for name, k in sweep.compressed:
                note = f"after node {name}: {k} directions (a basis of its row space)"
                if note not in notes:
                    notes.append(note)
        for j in sorted(reverse):
            J = reverse_jacobian(graph, x1, outs[j].name)
            rows = J.ne(0).any(1).nonzero().squeeze(1)
            submit(j, Prepared("dense", J[rows].T.contiguous(), rows, 1.0), [n])
        for f in list(pending):
            done[pending.pop(f)] = f.result()
    return [done[j] for j in range(len(outs))]


# -- explicit Jacobians -------------------------------------------------------------------
def node_jacobians(graph, x1: torch.Tensor, positions: Iterable[int], chunk: int = 256,
                   values: dict[str, torch.Tensor] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """`(position, d node / d input)` as a dense `(node size, input size)` matrix at the
    sample `x1` (batch of one, the graph's dtype) for the nodes at `positions`, in order,
    from one forward sweep. Each matrix is new; the sweep goes on when the next is asked."""
    wanted = set(positions)
    n = math.prod(graph.input_shape)
    chunks = input_chunks(graph.input_shape, chunk)
    if values is None:
        with torch.no_grad():
            values = graph.run(x1)
    for i, node, windows in TangentSweep(graph, x1, chunks, values, max(wanted) + 1):
        if i not in wanted:
            continue
        J = x1.new_zeros(math.prod(node.out_shape), n)
        for cols, t in zip(chunks, windows):
            rows, cols = t.flat_index(), cols.to(x1.device)
            J[rows[:, None], cols[None, :]] = t.data.reshape(len(cols), -1).T
        yield i, J


def graph_jacobians(graph, x: torch.Tensor, layers=None, dtype: torch.dtype = torch.float64,
                    chunk: int = 256, max_bytes: float = DEFAULT_MAX_BYTES) -> dict[Output, torch.Tensor]:
    """`jacobians` for a non-chain `Graph`: `{Output: (B, node size, input size)}` per node,
    from the forward sweep."""
    graph = cast(graph, dtype)
    xb = as_batch(graph, x, dtype)
    outs = graph_outputs(graph, layers)
    n = math.prod(graph.input_shape)
    item = torch.tensor([], dtype=dtype).element_size()
    stop = max(o.layer for o in outs) + 1
    peak, _ = _sweep_sizes(graph, input_chunks(graph.input_shape, chunk), stop, dtype)
    stored = xb.shape[0] * sum(o.size for o in outs) + max(o.size for o in outs)
    check_bytes(item * (n * stored + peak), max_bytes, "the explicit Jacobians")
    by_layer = {o.layer: o for o in outs}
    result = {o: torch.empty(xb.shape[0], o.size, n, dtype=dtype, device=xb.device) for o in outs}
    with single_threaded():
        for b in range(xb.shape[0]):
            for i, J in node_jacobians(graph, xb[b:b + 1], by_layer, chunk):
                result[by_layer[i]][b] = J
    return result
