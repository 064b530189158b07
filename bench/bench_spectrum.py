"""Benchmark: reluscope.spectrum.analyze vs WeightWatcher on the same models, same run.

Run: `.venv/bin/python bench/bench_spectrum.py` (needs `pip install weightwatcher`, a
benchmark-only dependency). Prints, per model, both tools' wall time and their ratio,
and per layer both tools' outlier counts (ours: eigenvalues above the MP edge + Tracy–
Widom margin; WeightWatcher: `num_spikes` from `mp_fit=True`) and tail exponents alpha,
with the known truth for the synthetic matrices (Gaussian: 0 outliers; Gaussian + 3
planted spikes: 3; Student-t with 2 dof: heavy-tailed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
import warnings

import numpy as np
import torch
from torch import nn


def _linear(w: np.ndarray) -> nn.Module:
    lin = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        lin.bias.zero_()
    return nn.Sequential(lin, nn.ReLU(), nn.Linear(w.shape[0], 10))


def synthetic(seed: int = 0) -> list[tuple[str, nn.Module, str, tuple]]:
    rng = np.random.default_rng(seed)
    n, p = 800, 400  # a Linear(400 -> 800): W is 800 x 400
    g = rng.standard_normal((n, p)) * 0.05
    u = np.linalg.qr(rng.standard_normal((n, 3)))[0]
    v = np.linalg.qr(rng.standard_normal((p, 3)))[0]
    theta = np.array([2.0, 3.0, 4.0]) * 0.05 * np.sqrt(n) * (p / n) ** 0.25
    u10 = np.linalg.qr(rng.standard_normal((n, 10)))[0]
    v10 = np.linalg.qr(rng.standard_normal((p, 10)))[0]
    theta10 = np.linspace(2.0, 4.0, 10) * 0.05 * np.sqrt(n) * (p / n) ** 0.25
    return [("gaussian 800x400", _linear(g), "0 outliers, random-like", (400,)),
            ("gaussian + 3 spikes", _linear(g + (u * theta) @ v.T), "3 outliers, no heavy tail", (400,)),
            ("gaussian + 3 strong spikes", _linear(g + (u * theta * 5) @ v.T), "3 outliers, no heavy tail",
             (400,)),
            ("gaussian + 10 spikes", _linear(g + (u10 * theta10) @ v10.T), "10 outliers, no heavy tail",
             (400,)),
            ("student-t(2) 800x400", _linear(rng.standard_t(2, size=(n, p)) * 0.05), "heavy-tailed", (400,))]


def trained_models(epochs: int) -> list[tuple[str, nn.Module, str, tuple]]:
    from reluscope import nets
    from reluscope.data import load
    from reluscope.train import TrainConfig, train

    torch.manual_seed(0)
    mlp = nets.build("mlp:256-256", (1, 8, 8), 10)
    train(mlp, load("digits"), TrainConfig(epochs=epochs))
    torch.manual_seed(0)
    cnn = nets.cifar_cnn(3, 32, 10)
    return [(f"digits MLP 256-256 ({epochs} epochs)", mlp, "", (1, 8, 8)),
            ("CIFAR CNN at init", cnn, "", (3, 32, 32))]


def run_ours(model, shape):
    from reluscope.spectrum import analyze

    start = time.perf_counter()
    res = analyze(model, input_shape=shape)
    return time.perf_counter() - start, res


def run_ww(model):
    import weightwatcher as ww

    from reluscope.spectrum._blas import one_blas_thread

    start = time.perf_counter()
    # the same one-BLAS-thread setting reluscope uses, so neither tool fights torch's threads
    with one_blas_thread(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        details = ww.WeightWatcher(model=model).analyze(mp_fit=True, randomize=True)
    return time.perf_counter() - start, details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the digits MLP")
    parser.add_argument("--quick", action="store_true", help="synthetic matrices only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    torch.set_num_threads(2)
    cases = synthetic() + ([] if args.quick else trained_models(args.epochs))
    run_ours(cases[0][1], cases[0][3])  # warm up imports and caches for both tools
    run_ww(cases[0][1])
    tot_ours = tot_ww = 0.0
    print(f"{'model':<34} {'layer':>5} {'matrix':>10}  {'outliers ours/WW':>16}  {'alpha ours/WW':>14}  "
          f"{'verdict (ours)':<14} truth")
    for name, model, truth, shape in cases:
        t_ours, res = run_ours(model, shape)
        t_ww, details = run_ww(model)
        tot_ours += t_ours
        tot_ww += t_ww
        ww_rows = {str(r["name"]): r for _, r in details.iterrows()}
        for ls in res.layers:
            r = ww_rows.get(ls.name)
            ww_out = "skipped" if r is None else str(int(r["num_spikes"]))
            ww_alpha = "skipped" if r is None else f"{r['alpha']:.2f}"
            print(f"{name:<34} {ls.name:>5} {ls.shape[0]:>4}x{ls.shape[1]:<5}  "
                  f"{ls.mp.n_outliers:>7} / {ww_out:<7}  {ls.tail.alpha:>6.2f} / {ww_alpha:<6}  "
                  f"{ls.verdict.label:<14} {truth if ls.name == '0' else ''}")
        print(f"{'':<34} time: reluscope {t_ours:.3f} s, WeightWatcher {t_ww:.2f} s, "
              f"ratio {t_ww / t_ours:.1f}x")
    print(f"\nTOTAL reluscope {tot_ours:.2f} s, WeightWatcher analyze(mp_fit=True, randomize=True) "
          f"{tot_ww:.2f} s: reluscope is {tot_ww / tot_ours:.1f}x faster")


if __name__ == "__main__":
    main()
