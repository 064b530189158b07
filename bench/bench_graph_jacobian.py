"""Benchmark: all-node Jacobian spectra of ResNet-20 (a non-chain graph) on one CIFAR image.

Run: `.venv/bin/python bench/bench_graph_jacobian.py [--all [--naive-full | --naive-rows K]]
[--naive-nodes N] [--data PATH]`.

Ours: `reluscope.jacobian.spectra` on the graph (forward-mode sweep, float64): the full
singular values of every node's Jacobian w.r.t. the 3×32×32 input.

Naive baseline (same run, same threads): for each node, one autograd backward per output
row of the float64 graph (`retain_graph`), stacked into the Jacobian, then
`numpy.linalg.svd`.

* Default: ours and the naive method on the last N nodes only (the smallest, default 3),
  both measured in full.
* `--all`: every node. The naive backward passes of all 478k rows take over 15 minutes
  on 2 cores, so by default they are ESTIMATED: each node's forward and K evenly spaced
  rows (`--naive-rows`, default 64) are timed and the row time is multiplied by the
  node's rows (a backward through the same graph prefix costs the same for every row).
  The NumPy SVD of every node is MEASURED in full, on the exact Jacobian (taken from the
  forward sweep, outside the timing), which also checks our singular values against
  NumPy on every node. `--naive-full` measures the backward passes of every row instead.
  The output says which parts are measured and which are estimated.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # NumPy keeps its own threads
    from contextlib import nullcontext

    def threadpool_limits(limits):
        return nullcontext()

from reluscope import nets
from reluscope.jacobian import spectra
from reluscope.jacobian._graph_spectra import node_jacobians
from reluscope.jacobian._jacobians import single_threaded

CIFAR = "/work/shared/data/cifar10-jpg"


def image(path: str) -> tuple[torch.Tensor, str]:
    """The first test image of the CIFAR-10 folder (else a random 3×32×32 input)."""
    if path and Path(path).exists():
        from reluscope.data import load

        ds = load(path)
        return ds.test.x[:1], f"CIFAR-10 test image 0 ({path})"
    torch.manual_seed(1)
    return torch.rand(1, 3, 32, 32), "random 3x32x32 input (no CIFAR folder found)"


def naive_rows(graph, x1: torch.Tensor, name: str, rows: list[int] | None = None):
    """Rows of d node / d input by one autograd backward each (all rows, or `rows`), and
    the seconds taken (forward included). One torch thread: faster for these batch-of-one
    passes than two threads waiting for each other."""
    with single_threaded():
        start = time.perf_counter()
        xin = x1.clone().requires_grad_(True)
        y = graph.run(xin.unsqueeze(0), keep=[name])[name].reshape(-1)
        picked = range(y.numel()) if rows is None else rows
        out = torch.stack([torch.autograd.grad(y[i], xin, retain_graph=True)[0].reshape(-1) for i in picked])
        return out, time.perf_counter() - start


def max_rel_diff(ours, ref: np.ndarray, b: int = 0) -> float:
    r = int(ours.rank[b])
    if r == 0:
        return 0.0
    return float(np.max(np.abs(ours.singular_values[b][:r] - ref[:r]) / ref[:r]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--naive-nodes", type=int, default=3, help="without --all: the last N nodes")
    ap.add_argument("--all", action="store_true", help="every node, ours against the naive method")
    ap.add_argument("--naive-full", action="store_true", help="with --all: time every naive row (slow)")
    ap.add_argument("--naive-rows", type=int, default=64, help="with --all: rows timed per node")
    ap.add_argument("--naive-threads", type=int, default=1,
                    help="with --all: BLAS threads of NumPy's SVD (1: no waiting on shared cores)")
    ap.add_argument("--data", default=CIFAR, help="CIFAR-10 ImageFolder (test/<class>/<image>)")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = nets.resnet20().eval()
    graph = nets.load(model, input_shape=(3, 32, 32))
    g64 = graph.copy(dtype=torch.float64)
    x, what = image(args.data)
    x1 = x[0].double()
    sizes = {node.name: math.prod(node.out_shape) for node in g64.nodes}
    print(f"resnet20 (seed 0, eval): {len(g64.nodes) - 1} nodes, {sum(list(sizes.values())[1:]):,} rows; "
          f"input: {what}; torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")

    if not args.all:
        names = [node.name for node in g64.nodes[-args.naive_nodes:]]
        print(f"nodes: {', '.join(f'{k} ({sizes[k]} rows)' for k in names)}")
        start = time.perf_counter()
        ref = {}
        for name in names:
            J, _ = naive_rows(g64, x1, name)
            ref[name] = np.linalg.svd(J.numpy(), compute_uv=False)
        t_naive = time.perf_counter() - start
        start = time.perf_counter()
        sub = spectra(graph, x, layers=names)
        t_ours = time.perf_counter() - start
        err = max(max_rel_diff(s, ref[s.output.name]) for s in sub)
        print(f"same nodes, both measured: naive {t_naive:.2f} s, ours {t_ours:.2f} s, "
              f"ratio {t_naive / t_ours:.1f}x, max rel. difference {err:.1e}")
        return

    cpu, start = time.process_time(), time.perf_counter()
    full = spectra(graph, x)
    t_ours, c_ours = time.perf_counter() - start, time.process_time() - cpu
    methods = sum(m == "svd" for s in full for m in s.method)
    print(f"ours: all {len(full)} nodes in {t_ours:.1f} s per image (cpu {c_ours:.1f} s, all threads); "
          f"{methods} node(s) by svd; {'; '.join(full.notes)}", flush=True)

    by_name = {s.output.name: s for s in full}
    t_rows, t_svd, worst, estimated = 0.0, 0.0, 0.0, not args.naive_full
    positions = range(1, len(g64.nodes))
    with torch.no_grad():
        values = g64.run(x1.unsqueeze(0))
    for i, J in node_jacobians(g64, x1.unsqueeze(0), positions, values=values):  # exact J, not timed
        name = g64.nodes[i].name
        m = J.shape[0]
        if estimated:
            k = min(m, args.naive_rows)
            picked = np.unique(np.linspace(0, m - 1, k).round().astype(int)).tolist()
            start = time.perf_counter()
            naive_rows(g64, x1, name, picked[:1])  # forward and first backward
            t_first = time.perf_counter() - start
            part, t_part = naive_rows(g64, x1, name, picked)
            per_row = max(0.0, t_part - t_first) / max(1, len(picked) - 1)
            t_node = t_first + per_row * (m - 1)
            torch.testing.assert_close(part, J[picked], rtol=1e-9, atol=1e-12)
        else:
            Jn, t_node = naive_rows(g64, x1, name)
            torch.testing.assert_close(Jn, J, rtol=1e-9, atol=1e-12)
        t_rows += t_node
        with threadpool_limits(args.naive_threads):
            start = time.perf_counter()
            ref = np.linalg.svd(J.numpy(), compute_uv=False)
            t_node_svd = time.perf_counter() - start
        t_svd += t_node_svd
        diff = max_rel_diff(by_name[name], ref)
        worst = max(worst, diff)
        print(f"  {name}: {m} rows, naive backward {t_node:.1f} s{' (est.)' if estimated else ''}, "
              f"NumPy SVD {t_node_svd:.1f} s, max rel. difference {diff:.1e}", flush=True)
        del J
    t_naive = t_rows + t_svd
    rows_note = ("ESTIMATED from the forward and " f"{args.naive_rows} timed rows per node, extrapolated "
                 "to all rows" if estimated else "measured, every row")
    print(f"naive: autograd backward per row {t_rows:.1f} s ({rows_note}; 1 torch thread); NumPy SVD "
          f"{t_svd:.1f} s (measured, every node; {args.naive_threads} BLAS thread(s))")
    print(f"all nodes: ours {t_ours:.1f} s per image, naive {t_naive:.1f} s per image"
          f"{' (partly estimated, see above)' if estimated else ''}; ratio {t_naive / t_ours:.1f}x "
          f"(cpu seconds, if naive ran on one thread: ours {c_ours:.1f}, naive {t_naive:.1f}, "
          f"ratio {t_naive / c_ours:.1f}x); "
          f"max rel. difference of our singular values to NumPy's, every node: {worst:.1e}")


if __name__ == "__main__":
    main()
