"""Time per epoch of the FC teacher–student run: reluscope (with per-epoch correlation tracking)
against a plain PyTorch loop on the same model, data and thread count, in the same process.

    .venv/bin/python bench/bench_teacher.py [--n-train 100000] [--epochs 2]

Prints seconds per epoch of both and their ratio (goal <= 1.3), and the cost of one student at the
default 10 epochs (what each of `--students N` costs).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from reluscope.teacher import FCConfig, run_fc
from reluscope.teacher._fc import fc_data, fc_student, make_fc_teacher


def plain_loop(cfg: FCConfig) -> float:
    """The loop a user would write: SGD on MSE, shuffled minibatches, nothing tracked."""
    teacher = make_fc_teacher(cfg.d, cfg.widths, cfg.outputs, cfg.data_std, cfg.seed)
    x, y, _, _ = fc_data(cfg, teacher)
    student = fc_student(cfg)
    opt = torch.optim.SGD(student.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        perm = torch.randperm(cfg.n_train, generator=gen)
        for s in range(0, cfg.n_train, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(student(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / cfg.epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cfg = FCConfig(n_train=args.n_train, epochs=args.epochs)
    torch.set_num_threads(1)  # run_fc trains on one thread (tiny layers); the baseline gets the same
    base, ours = [], []
    for _ in range(args.repeats):  # interleaved, best of: the machine may be shared
        base.append(plain_loop(cfg))
        ours.append(run_fc(cfg).seconds_per_epoch)
    b, o = min(base), min(ours)
    print(f"FC setting {list(cfg.widths)} x{cfg.multi}, {cfg.n_train} samples, batch {cfg.batch_size}")
    print(f"plain PyTorch loop        : {b:.3f} s/epoch")
    print(f"reluscope run_fc (tracked): {o:.3f} s/epoch")
    print(f"ratio reluscope / plain   : {o / b:.3f}  (goal <= 1.3)")
    epochs = FCConfig().epochs  # a student costs this many epochs; `--students N` costs N times that
    print(f"one student, {epochs} epochs : {o * epochs:.0f} s (reluscope teacher fc --students N: N times)")


if __name__ == "__main__":
    main()
