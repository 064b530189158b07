"""Time per training epoch with SHADOW (ratio 1, and the theory's defaults) against without, same run.

    .venv/bin/python bench/bench_shadow_train.py [--data ../shared/data/mnist] [--arch mlp:256-256]
                                                 [--device cuda]

Three arms use the built-in trainer with the same model, data, batch size and number of steps:
- plain: the real batch;
- doubled: the real batch twice (what ratio 1 costs with a free sampler: the floor);
- shadow: the real batch plus one shadow sample per real one, codes from the top layer
  (`--spec`, the first defaults, kept so the figures compare across versions);
- defaults: `ShadowAugment`'s defaults (codes from the first hidden layer, a quarter of a
  sample per real one, rescaled and clipped).
Prints the median epoch times and the ratios to plain (goal for shadow: <= 1.5). The
doubled arm separates the cost of training on twice the samples from the sampler's own.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from reluscope import data, nets
from reluscope.shadow import ShadowAugment
from reluscope.train import TrainConfig, train


def _doubled(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x, x]), torch.cat([y, y])


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(default) if default.is_dir() else "digits")
    ap.add_argument("--arch", default="mlp:256-256")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--spec", default="layer=top,rho=0.5,ratio=1,scale=model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = data.load(args.data)
    cfg = TrainConfig(epochs=args.epochs, lr=0.05, batch_size=args.batch_size, seed=0, device=args.device)
    times = {"plain": [], "doubled": [], "shadow": [], "defaults": []}
    for _ in range(args.repeats):  # alternate so that machine load affects every arm alike
        for kind in times:
            torch.manual_seed(0)
            model = nets.build(args.arch, ds.spec.shape, ds.spec.classes).to(args.device)
            aug = {"plain": None, "doubled": _doubled}.get(kind)
            if kind == "shadow":
                aug = ShadowAugment.from_spec(model, args.spec, input_shape=ds.spec.shape)
            elif kind == "defaults":
                aug = ShadowAugment(model, input_shape=ds.spec.shape)
            hist = train(model, ds, cfg, augment=aug).history
            times[kind] += [h["seconds"] for h in hist[1:]]  # the first epoch warms up
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{ds!r}, {args.arch}, batch {args.batch_size}, SHADOW {args.spec}, device {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"epoch, real batch          : {med['plain']:7.3f} s")
    print(f"epoch, real batch twice    : {med['doubled']:7.3f} s   ratio {med['doubled'] / med['plain']:.3f}"
          "  (the floor of ratio 1)")
    print(f"epoch, with SHADOW         : {med['shadow']:7.3f} s   ratio {med['shadow'] / med['plain']:.3f}"
          "  (goal <= 1.5)")
    print(f"sampler's own share        : {med['shadow'] / med['doubled']:.3f}x the doubled epoch")
    ratio = med["defaults"] / med["plain"]
    print(f"epoch, SHADOW's defaults   : {med['defaults']:7.3f} s   ratio {ratio:.3f}  (first layer, 0.25)")


if __name__ == "__main__":
    main()
