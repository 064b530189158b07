"""Jacobian spectra of every node of a non-chain graph (residual adds, concatenations, smooth
activations), by forward mode.

The graph is cast to the computing dtype (float64 by default, on a copy) and one function
returns the selected node outputs of `graph.run`; `torch.func.jvp` of it, vmapped over a
chunk of identity columns, gives that chunk's columns of every selected node's Jacobian
at once. The columns of each node are kept restricted to the rows they reach and handed
to the same solver as the chain path (`_spectra._spectrum`): Gram matrix and a symmetric
eigensolver, or an SVD where the Gram matrix cannot give the accuracy asked for, with the
same rank, condition and error bound. Nodes are taken in groups whose dense Jacobians fit
in `max_bytes`; a single node that does not fit is refused up front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import ConfigError
from ._jacobians import Output, as_batch, check_bytes, input_chunks, single_threaded

RELU_LIKE = ("relu", "leaky_relu")


def graph_outputs(graph, nodes: Iterable[int | str] | None = None) -> list[Output]:
    """One `out` Output per selected node (default: every node but the input).

    Nodes are picked by name or by position in `graph.nodes`; `Output.layer` and
    `Output.index` are that position.
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
        out.append(Output(i, i, node.name, "out", tuple(node.out_shape), act))
    return out


def graph_spectra(graph, x: torch.Tensor, layers=None, dtype: torch.dtype = torch.float64,
                  method: str = "auto", rtol: float = 1e-6, chunk: int = 192,
                  max_bytes: float = 2 * 1024**3):
    """`spectra` for a non-chain `Graph`: one `LayerSpectrum` per node output (stage `out`)."""
    from ._spectra import JacobianSpectra, LayerSpectrum

    start = time.perf_counter()
    if graph.dtype != dtype:
        graph = graph.copy(dtype=dtype)
    xb = as_batch(graph, x, dtype)
    outs = graph_outputs(graph, layers)
    n = math.prod(graph.input_shape)
    chunks = input_chunks(graph.input_shape, chunk)
    groups = _groups(graph, outs, n, max(len(c) for c in chunks), dtype, max_bytes)
    per_sample = [_sample(graph, xb[b:b + 1], outs, groups, chunks, method, rtol, max_bytes)
                  for b in range(xb.shape[0])]
    result = []
    for j, o in enumerate(outs):
        rows = [p[j] for p in per_sample]
        active = None if rows[0]["active"] is None else np.array([r["active"] for r in rows])
        result.append(LayerSpectrum(
            o, n, np.stack([r["sv"] for r in rows]), np.array([r["rank"] for r in rows]),
            np.array([r["cond"] for r in rows]), active, tuple(r["method"] for r in rows),
            np.array([r["bound"] for r in rows])))
    return JacobianSpectra(tuple(result), xb.shape[0], graph.input_shape, str(dtype).replace("torch.", ""),
                           method, rtol, time.perf_counter() - start,
                           notes=(f"graph path: {len(outs)} nodes in {len(groups)} group(s)",))


def estimate_graph_bytes(graph, outs: list[Output], n: int, width: int, dtype=torch.float64) -> int:
    """Bytes to hold the dense Jacobians of `outs` for one sample plus one chunk's tangents."""
    item = torch.tensor([], dtype=dtype).element_size()
    return item * (_fixed(graph, outs, n, width) + (n + width) * sum(o.size for o in outs))


def _fixed(graph, outs, n: int, width: int) -> int:
    """Elements besides the stored Jacobians: the values and tangents of a chunk alive at
    once while `graph.run` frees what no later node reads (three times, for temporaries)
    and the solver's work on the largest node (Gram matrix plus an explicit copy)."""
    last = {node.name: len(graph.nodes) for node in graph.nodes}
    for i, node in enumerate(graph.nodes):
        for k in node.inputs:
            last[k] = i
    size = {node.name: math.prod(node.out_shape) for node in graph.nodes}
    live, peak = {}, 0
    for i, node in enumerate(graph.nodes):
        live[node.name] = size[node.name]
        peak = max(peak, sum(live.values()))
        for k in node.inputs:
            if last[k] == i:
                live.pop(k, None)
    largest = max(min(o.size, n) ** 2 + n * o.size for o in outs)
    return 3 * (width + 1) * peak + 2 * largest


def _groups(graph, outs, n, width, dtype, max_bytes) -> list[list[int]]:
    """Consecutive groups of outputs whose dense Jacobians fit in `max_bytes` together
    (each group is one forward sweep over the input chunks)."""
    item = torch.tensor([], dtype=dtype).element_size()
    fixed = item * _fixed(graph, outs, n, width)
    biggest = max(o.size for o in outs)
    check_bytes(fixed + item * (n + width) * biggest, max_bytes, "the graph Jacobian spectra")
    groups, cur, used = [], [], fixed
    for j, o in enumerate(outs):
        need = item * (n + width) * o.size
        if cur and used + need > max_bytes:
            groups.append(cur)
            cur, used = [], fixed
        cur.append(j)
        used += need
    groups.append(cur)
    return groups


def _sample(graph, x1, outs, groups, chunks, method, rtol, max_bytes) -> list[dict]:
    from ._spectra import _spectrum

    n = math.prod(graph.input_shape)
    widths = [len(c) for c in chunks]
    with torch.no_grad():
        values = graph.run(x1)
    active = {}
    for o in outs:
        node = graph.nodes[o.layer]
        if node.op == "activation" and node.kind in RELU_LIKE:
            active[o.layer] = int((values[node.inputs[0]] > 0).sum())
    del values
    done: dict[int, dict] = {}
    for group in groups:
        names = [outs[j].name for j in group]

        def f(xin, names=names, stop=max(outs[j].layer for j in group) + 1):
            vals = _run_upto(graph, xin, set(names), stop)
            return tuple(vals[k] for k in names)

        def column(v, f=f):
            return torch.func.jvp(f, (x1,), (v.unsqueeze(0),))[1]

        blocks = {j: [] for j in group}
        for cols in chunks:
            e = torch.zeros(len(cols), n, dtype=x1.dtype, device=x1.device)
            e[torch.arange(len(cols)), cols.to(x1.device)] = 1
            with torch.no_grad():
                tangents = torch.func.vmap(column)(e.reshape(len(cols), *graph.input_shape))
            for j, t in zip(group, tangents):
                data = t.reshape(len(cols), -1)
                local = data.ne(0).any(0).nonzero().squeeze(1)
                blocks[j].append((local, data[:, local].T.contiguous()))
            del tangents

        def one(j, blocks=blocks):
            torch.set_num_threads(1)
            res = _spectrum(blocks[j], widths, outs[j].size, n, method, rtol, max_bytes)
            blocks[j] = []
            res["active"] = active.get(outs[j].layer)
            return res

        order = sorted(group, key=lambda j: -sum(b.numel() for _, b in blocks[j]))
        with single_threaded() as workers, ThreadPoolExecutor(workers) as pool:
            done.update(zip(order, pool.map(one, order)))
    return [done[j] for j in range(len(outs))]


def _run_upto(graph, x: torch.Tensor, keep: set[str], stop: int) -> dict[str, torch.Tensor]:
    """`graph.run(x, keep)` that stops after node `stop - 1` and frees what no later node reads."""
    nodes = graph.nodes[:stop]
    last = {}
    for i, node in enumerate(nodes):
        for k in node.inputs:
            last[k] = i
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
