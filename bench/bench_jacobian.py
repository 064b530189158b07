"""All-layer Jacobian spectra of one CIFAR image through the CIFAR CNN, against the naive way.

Naive: one autograd backward per output row to build each layer's Jacobian, then NumPy's
SVD per layer. The backward passes (about 180,000) are timed on a random subset of rows per
layer and extrapolated linearly in the number of rows; the printout says so. The SVDs are
timed in full, once per distinct Jacobian shape, on a Gaussian matrix of that shape (the
cost of an SVD does not depend on the values).

    .venv/bin/python bench/bench_jacobian.py [--threads 2] [--rows 32] [--method gram]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from reluscope import nets
from reluscope.jacobian import outputs, spectra

CIFAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg"


def one_image() -> tuple[torch.Tensor, str]:
    files = sorted((CIFAR / "test").glob("*/*.jpg"))[:1] if CIFAR.is_dir() else []
    if not files:
        return torch.rand(1, 3, 32, 32), "a random image (CIFAR-10 folder not found)"
    from PIL import Image

    img = np.asarray(Image.open(files[0]).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(img).permute(2, 0, 1)[None], str(files[0].relative_to(CIFAR))


def naive(net, x: torch.Tensor, rows_per_layer: int, seed: int) -> tuple[float, list[str]]:
    """Extrapolated seconds of the naive method, and the lines describing how."""
    g = torch.Generator().manual_seed(seed)
    outs = outputs(net)
    n = x.numel()
    xr = x.detach().clone().requires_grad_(True)
    tr = net.trace(xr)
    total, lines = 0.0, []
    for o in outs:
        y = (tr.pre if o.stage == "pre" else tr.post)[o.layer].reshape(-1)
        rows = torch.randperm(o.size, generator=g)[:rows_per_layer]
        start = time.perf_counter()
        for r in rows:
            (grad,) = torch.autograd.grad(y[r], xr, retain_graph=True)
        per_row = (time.perf_counter() - start) / len(rows)
        total += per_row * o.size
        lines.append(f"  layer {o.index:2d} {o.size:6d} rows: {1e3 * per_row:6.2f} ms/row "
                     f"(timed {len(rows)}) -> {per_row * o.size:8.1f} s")
    # NumPy SVD of an explicit Jacobian, timed once per distinct shape
    rng = np.random.default_rng(seed)
    per_shape: dict[int, float] = {}
    for o in outs:
        if o.size not in per_shape:
            J = rng.standard_normal((o.size, n))
            start = time.perf_counter()
            np.linalg.svd(J, compute_uv=False)
            per_shape[o.size] = time.perf_counter() - start
            del J
    svd_total = sum(per_shape[o.size] for o in outs)
    timed = ", ".join(f"{m}x{n}: {t:.1f} s" for m, t in per_shape.items())
    lines.append(f"  NumPy SVD, timed per shape ({timed}) -> {svd_total:.1f} s for all {len(outs)} layers")
    return total + svd_total, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=32, help="rows timed per layer for the naive method")
    ap.add_argument("--method", default="gram", choices=["gram", "auto", "svd"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = nets.cifar_cnn().eval()
    net = nets.load(model, input_shape=(3, 32, 32)).copy(dtype=torch.float64)
    x, source = one_image()
    x = x.double()
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"CIFAR CNN (Behrmann et al.), {len(outputs(net))} layer outputs, input 3x32x32 = {x.numel()}; "
          f"image {source}; {args.threads} threads; load average {load}")

    start, cpu = time.perf_counter(), time.process_time()
    spec = spectra(net, x, method=args.method)
    ours, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"reluscope.jacobian.spectra (method={args.method}): {ours:.1f} s per image, {cpu:.1f} CPU s "
          f"(ranks {[int(s.rank[0]) for s in spec]})")

    t_naive, lines = naive(net, x, args.rows, args.seed)
    print("naive (one autograd backward per row + NumPy SVD per layer); backward passes EXTRAPOLATED "
          f"from {args.rows} rows per layer, SVDs timed:")
    print("\n".join(lines))
    print(f"naive total (backward passes extrapolated): {t_naive:.0f} s = {t_naive / 60:.1f} min")
    print(f"ratio naive / reluscope: {t_naive / ours:.1f}x  (goal >= 30x; goal <= 30 s per image: "
          f"{'met' if ours <= 30 else 'not met'} at {ours:.1f} s)")
    if math.isfinite(ours) and load != "?" and float(load) > args.threads:
        print(f"note: the machine was shared (load {load} on {args.threads} threads); both timings are "
              "inflated, the ratio less so")


if __name__ == "__main__":
    main()
