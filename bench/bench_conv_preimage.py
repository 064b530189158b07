"""Conv pre-images per CIFAR sample: the sparse path vs the dense unroll, in the same run.

Layer: the first conv of `reluscope.nets.cifar_cnn()` (3 -> 32 channels, 3x3, padding 1,
over 32x32: a 32,768 x 3,072 matrix) with PyTorch's default random initialisation
(`torch.manual_seed(seed)`), on CIFAR-10 test images from the shared ImageFolder.

Per sample, in one process with one BLAS thread:
- dense (before): `classify(W, b, x)` on the float64 unroll `layer_system` (QR of W_P);
- sparse (now): `classify_sparse` on the CSR matrix `sparse_layer_system` (certified
  banded Cholesky of W_P^T W_P, see `reluscope.preimage._sparse`).
The dense path runs on the first few samples only (about 15 s each); kinds must agree.

Usage: .venv/bin/python bench/bench_conv_preimage.py [--samples 50] [--dense-samples 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread: fair and steady

import numpy as np  # noqa: E402

CIFAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--dense-samples", type=int, default=3, help="samples for the (slow) dense path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(CIFAR))
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from reluscope.data import load
    from reluscope.nets import as_graph, cifar_cnn
    from reluscope.preimage import classify
    from reluscope.preimage._net import layer_inputs, layer_system
    from reluscope.preimage._sparse import SparseLayer, classify_sparse, sparse_layer_system

    threadpool_limits(1)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    net = as_graph(cifar_cnn(), (3, 32, 32))
    data = load(args.data)
    idx = np.sort(np.random.default_rng(args.seed).choice(len(data.test.x), args.samples, replace=False))
    X = layer_inputs(net, 0, data.test.x[torch.from_numpy(idx)])
    lay = net.layers[0]
    print(f"layer 0 ('{lay.name}', {lay.kind} {lay.in_shape} -> {lay.out_shape}), random init seed "
          f"{args.seed}; {len(X)} CIFAR-10 test samples")

    start = time.perf_counter()
    Ws, bs = sparse_layer_system(net, 0)
    layer = SparseLayer(Ws, bs)
    t_setup_sparse = time.perf_counter() - start
    start = time.perf_counter()
    W, b = layer_system(net, 0)
    t_setup_dense = time.perf_counter() - start
    print(f"setup: sparse matrix + ordering {t_setup_sparse:.2f} s ({Ws.nnz} nonzeros, bandwidth "
          f"{layer.bandwidth}); dense unroll {t_setup_dense:.2f} s ({W.nbytes / 2**20:.0f} MiB)")

    classify_sparse(layer, X[-1])  # warm-up: imports and first calls out of the timings
    sparse_res = [classify_sparse(layer, x) for x in X]
    t_sparse = np.array([r.seconds for r in sparse_res])
    print(f"sparse: median {np.median(t_sparse):.3f} s/sample (min {t_sparse.min():.3f}, max "
          f"{t_sparse.max():.3f}) over {len(X)}; kinds {dict(Counter(r.kind for r in sparse_res))}; "
          f"dense fallbacks {int(layer._dense is not None)}")

    n = min(args.dense_samples, len(X))
    t_dense, agree = [], 0
    for i in range(n):
        res = classify(W, b, X[i])
        t_dense.append(res.seconds)
        same = (res.kind, res.n_positive, res.n_tight, res.rank) == \
            (sparse_res[i].kind, sparse_res[i].n_positive, sparse_res[i].n_tight, sparse_res[i].rank)
        agree += same
        print(f"  dense sample {i}: {res.kind:<10} {res.seconds:7.2f} s   sparse: {sparse_res[i].kind:<10} "
              f"{t_sparse[i]:.3f} s", flush=True)
    med_dense, med_sparse = float(np.median(t_dense)), float(np.median(t_sparse[:n]))
    print(f"dense: median {med_dense:.2f} s/sample over the first {n}; sparse on the same samples "
          f"{med_sparse:.3f} s; kinds (and |P|, |T|, rank) agree {agree}/{n}")
    print(f"RATIO dense/sparse (median, same samples): {med_dense / med_sparse:.0f}x (goal >= 15x); "
          f"sparse {np.median(t_sparse):.3f} s/sample (goal <= 1 s)")


if __name__ == "__main__":
    main()
