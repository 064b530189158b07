"""Shadow sampling throughput against the same chain of bare matrix products, same run.

    .venv/bin/python bench/bench_shadow_sample.py [--batch 256] [--widths 784,2048,2048,2048]

Baseline: `h @ W_L ... @ W_1` with the weights pre-extracted (the GEMMs the sampler cannot
avoid). Measured: `reluscope.shadow.sample` from the top layer to the input (ReLU,
dropout noise, per-layer α). Prints the median times and their ratio (goal <= 1.25).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reluscope.shadow import gaussian_net, sample


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--widths", default="784,2048,2048,2048")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rho", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]
    net = gaussian_net(widths, torch.Generator().manual_seed(0))
    weights = [lay.weight.detach().contiguous() for lay in net.layers][::-1]
    h = torch.rand(args.batch, widths[-1])
    gen = torch.Generator().manual_seed(0)

    def bare():
        z = h
        for w in weights:
            z = z @ w
        return z

    def shadow():
        return sample(net, h, layer=-1, rho=args.rho, alpha="paper", generator=gen)

    # interleave the two so that machine load affects both alike
    t_bare, t_shadow = [], []
    for _ in range(3):
        t_bare.append(_median_time(bare, args.repeats))
        t_shadow.append(_median_time(shadow, args.repeats))
    tb, ts = min(t_bare), min(t_shadow)
    print(f"widths {widths}, batch {args.batch}, rho {args.rho}, {torch.get_num_threads()} threads")
    print(f"bare matrix chain : {tb * 1e3:8.2f} ms  ({args.batch / tb:,.0f} codes/s)")
    print(f"shadow sample     : {ts * 1e3:8.2f} ms  ({args.batch / ts:,.0f} codes/s)")
    print(f"ratio shadow/bare : {ts / tb:.3f}  (goal <= 1.25)")


if __name__ == "__main__":
    main()
