"""Benchmark: matrix-free Jacobian spectra of a 224×224 ResNet-18 (ImageNet stem), per image.

Run: `.venv/bin/python bench/bench_resnet224.py [--probes 16] [--steps 40] [--k 20]
[--outputs stage4.1.relu2,fc] [--size 224] [--skip-baseline]`.

One random input (uniform in [0, 1)) through `nets.resnet18(imagenet_stem=True)` with random
weights (eval mode, BN folded). Ours: `spectra(..., method="lanczos")` on the default outputs at
this size (`_matfree.stage_nodes`: the output of each of the 4 stages and the logits), float32,
linearized jvps: per output the wall time, products, top singular values, σ_min status, rank
estimate and the density's Kolmogorov bound. Memory: the process's peak resident set
(`resource.getrusage`, the peak over the whole run) against the dense Jacobians the run never
forms (m × n × 4 bytes each). No exact baseline exists at 224×224 (the dense Jacobian of
stage 1 alone is ~160 GB); the in-run baseline is the same pipeline on the same net at
3×32×32 against `method="exact"` there (ratio printed), as in bench_matfree.py.

Measured (2 shared CPU cores, torch 2.13, float32, 2026-12): defaults (k 20, 16 probes × 40
steps) 278 s per image for the 5 outputs (52–57 s each, 60–75 % of it the density), peak RSS
1.9 GiB against 227 GB of dense Jacobians; `--k 10 --probes 8 --steps 20 --max-steps 100`
90 s per image (stages 1–2 stop unconverged at 100 steps, flagged), peak 1.0 GiB; baseline at
3×32×32: lanczos 12.9 s vs exact 14.5 s (0.9×), top-10 relative error 3.8e-14.
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np
import torch

from reluscope import nets
from reluscope.jacobian import spectra
from reluscope.jacobian._matfree import stage_nodes


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(size: int, outputs, k: int, probes: int, steps: int, max_steps, method: str = "lanczos"):
    torch.manual_seed(0)
    model = nets.resnet18(imagenet_stem=True).eval()
    graph = nets.load(model, input_shape=(3, size, size))
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    names = outputs or stage_nodes(graph)
    t = time.perf_counter()
    lz = spectra(graph, x, layers=names, method=method, k=k, probes=probes, steps=steps,
                 max_steps=max_steps, dtype=torch.float32 if size >= 64 else None)
    return graph, x, names, lz, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--probes", type=int, default=16)
    p.add_argument("--steps", type=int, default=40, help="Lanczos steps per density probe")
    p.add_argument("--max-steps", type=int, default=None, help="Golub–Kahan steps for the top k at most")
    p.add_argument("--outputs", default=None, help="node names (default: the stage outputs and the logits)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--method", default="auto", choices=["auto", "lanczos"],
                   help="auto: exact where the dense computation fits (the logits: 10 reverse products)")
    a = p.parse_args()
    outs = a.outputs.split(",") if a.outputs else None
    threads = torch.get_num_threads()
    rss0 = peak_mib()
    graph, x, names, lz, t_all = run(a.size, outs, a.k, a.probes, a.steps, a.max_steps, a.method)
    n = math.prod(graph.input_shape)
    print(f"ResNet-18 (ImageNet stem), random weights, one random 3x{a.size}x{a.size} input, "
          f"{threads} threads, method {a.method}: lanczos k={a.k}, {a.probes} probes x {a.steps} steps, "
          f"{lz.dtype}")
    print(f"{'output':<18}{'rows m':>9}{'dense J':>10}{'seconds':>9}{'density':>8}{'products':>9}"
          f"{'GK steps':>9}"
          f"{'s_1':>10}{'s_2':>10}{'conv':>6}{'s_min (status)':>26}{'rank est (+-se)':>22}{'KS bnd':>8}")
    dense = 0
    for s in lz:
        m = s.output.size
        dense += m * n * 4
        if not s.estimated:
            sv = s.singular_values[0]
            print(f"{s.output.name:<18}{m:>9,}{m * n * 4 / 1e9:>8.1f}GB  exact ({s.method[0]}, float64): "
                  f"s_1 {sv[0]:.4g}, s_2 {sv[1]:.4g}, s_min {s.sigma_min[0]:.3g}, rank {s.rank[0]}")
            continue
        mf = s.matfree[0]
        smin = f"{mf.sigma_min:.3g} ({mf.sigma_min_status})"
        rank = f"{mf.rank:,.0f} +- {mf.rank_se:,.0f}"
        ksb = mf.density.ks_bound if mf.density is not None else float("nan")
        print(f"{s.output.name:<18}{m:>9,}{m * n * 4 / 1e9:>8.1f}GB{mf.seconds:>9.1f}"
              f"{mf.density_seconds:>8.1f}"
              f"{mf.products:>9}{mf.steps:>9}"
              f"{mf.top[0]:>10.4g}{mf.top[1]:>10.4g}{'yes' if mf.converged else 'no':>6}{smin:>26}{rank:>22}"
              f"{ksb:>8.3f}")
    peak = peak_mib()
    print(f"per image: {t_all:.1f} s for {len(lz)} outputs; peak RSS {peak:,.0f} MiB (before: "
          f"{rss0:,.0f} MiB) vs dense Jacobians never formed: "
          f"{dense / 1e9:,.0f} GB ({dense / 2**20 / peak:,.0f}x the peak)")
    for note in lz.notes:
        print("note:", note)
    if a.skip_baseline:
        return
    # in-run baseline: the same pipeline on the same net at 3x32x32, against exact there
    g32, x32, names32, lz32, t32 = run(32, outs, a.k, a.probes, a.steps, a.max_steps)
    t = time.perf_counter()
    ex = spectra(g32, x32, layers=names32, method="exact")
    t_ex = time.perf_counter() - t
    errs = []
    for e, m in zip(ex, lz32):
        sv, mf = e.singular_values[0], m.matfree[0]
        kk = min(a.k, int(e.rank[0]))
        errs.append(float(np.max(np.abs(mf.top[:kk] - sv[:kk]) / sv[:kk])))
    print(f"baseline 3x32x32, same net and outputs ({', '.join(names32)}): exact {t_ex:.1f} s, "
          f"lanczos {t32:.1f} s (float64), ratio lanczos/exact {t32 / t_ex:.1f}x; top-{a.k} max rel err "
          f"{max(errs):.1e}")
    print(f"224 vs 32 (lanczos): {t_all / t32:.1f}x the time for {n / 3072:.0f}x the input")


if __name__ == "__main__":
    main()
