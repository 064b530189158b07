"""Time per training epoch with SHADOW (ratio 1) against without, same run.

    .venv/bin/python bench/bench_shadow_train.py [--data ../shared/data/mnist] [--arch mlp:256-256]

Both runs use the built-in trainer, the same model, data, batch size and number of steps;
SHADOW adds one synthetic sample per real one (so the forward/backward batch doubles).
Prints the median epoch times and their ratio (goal <= 1.5).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from reluscope import data, nets
from reluscope.shadow import ShadowAugment
from reluscope.train import TrainConfig, train


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(default) if default.is_dir() else "digits")
    ap.add_argument("--arch", default="mlp:256-256")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--spec", default="rho=0.5,ratio=1")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = data.load(args.data)
    cfg = TrainConfig(epochs=args.epochs, lr=0.05, batch_size=args.batch_size, seed=0)
    times = {"plain": [], "shadow": []}
    for _ in range(2):  # alternate so that machine load affects both alike
        for kind in times:
            torch.manual_seed(0)
            model = nets.build(args.arch, ds.spec.shape, ds.spec.classes)
            aug = None
            if kind == "shadow":
                aug = ShadowAugment.from_spec(model, args.spec, input_shape=ds.spec.shape)
            hist = train(model, ds, cfg, augment=aug).history
            times[kind] += [h["seconds"] for h in hist[1:]]  # the first epoch warms up
    plain, shadow = statistics.median(times["plain"]), statistics.median(times["shadow"])
    print(f"{ds!r}, {args.arch}, batch {args.batch_size}, SHADOW {args.spec}, "
          f"{torch.get_num_threads()} threads")
    print(f"epoch without SHADOW: {plain:7.3f} s")
    print(f"epoch with SHADOW   : {shadow:7.3f} s")
    print(f"ratio               : {shadow / plain:.3f}  (goal <= 1.5)")


if __name__ == "__main__":
    main()
