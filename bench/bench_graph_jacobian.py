"""Benchmark: all-node Jacobian spectra of ResNet-20 (a non-chain graph) on one image.

Run: `.venv/bin/python bench/bench_graph_jacobian.py [--naive-nodes N] [--naive-node NAME] [--all]`.

Ours: `reluscope.jacobian.spectra` on the graph (forward mode, float64): every node's
Jacobian w.r.t. the 3×32×32 input and its singular values. Naive baseline: for the last
N nodes only (the smallest outputs, default 3), one autograd backward per output row of
the float64 graph, then `numpy.linalg.svd`. The ratio compares both on exactly the nodes
the baseline covers (nothing is extrapolated); with `--all`, the all-node time per image
is printed too.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from reluscope import nets
from reluscope.jacobian import spectra


def naive(graph, x1: torch.Tensor, names: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        xin = x1.clone().requires_grad_(True)
        y = graph.run(xin.unsqueeze(0), keep=[name])[name].reshape(-1)
        rows = [torch.autograd.grad(y[i], xin, retain_graph=True)[0].reshape(-1) for i in range(y.numel())]
        out[name] = np.linalg.svd(torch.stack(rows).numpy(), compute_uv=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--naive-nodes", type=int, default=3, help="the last N nodes")
    ap.add_argument("--naive-node", action="append", default=[], help="add a node by name (repeatable)")
    ap.add_argument("--all", action="store_true", help="also time all nodes (minutes on 2 cores)")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = nets.resnet20().eval()
    graph = nets.load(model, input_shape=(3, 32, 32))
    g64 = graph.copy(dtype=torch.float64)
    x = torch.randn(1, 3, 32, 32)
    names = args.naive_node + [node.name for node in g64.nodes[-args.naive_nodes:]]
    sizes = {node.name: math.prod(node.out_shape) for node in g64.nodes}
    print(f"resnet20: {len(g64.nodes) - 1} nodes, input 3x32x32, {torch.get_num_threads()} threads")
    print(f"naive nodes: {', '.join(f'{k} ({sizes[k]} rows)' for k in names)}")

    t = time.perf_counter()
    ref = naive(g64, x[0].double(), names)
    t_naive = time.perf_counter() - t
    t = time.perf_counter()
    sub = spectra(graph, x, layers=names)
    t_ours = time.perf_counter() - t
    err = max(float(np.max(np.abs(s.singular_values[0][:s.rank[0]] - ref[s.output.name][:s.rank[0]])
                           / ref[s.output.name][:s.rank[0]])) for s in sub)
    print(f"same nodes: naive {t_naive:.2f} s, ours {t_ours:.2f} s, ratio {t_naive / t_ours:.1f}x, "
          f"max rel. difference {err:.1e}")
    if args.all:
        t = time.perf_counter()
        full = spectra(graph, x, max_bytes=8 * 2**30)
        t_all = time.perf_counter() - t
        methods = sum(m == "svd" for s in full for m in s.method)
        print(f"all {len(full)} nodes: {t_all:.1f} s per image ({full.notes[0]}; {methods} redone by svd)")


if __name__ == "__main__":
    main()
