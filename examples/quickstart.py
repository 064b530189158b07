"""Quickstart: train a small MLP on the embedded digits, import it, look inside.

Run: python examples/quickstart.py
"""

import torch

from reluscope import data, nets
from reluscope.report import ReportContext, build_report
from reluscope.train import TrainConfig, train

ds = data.load("digits")
torch.manual_seed(0)
model = nets.mlp([64, 128, 128, 10])
result = train(model, ds, TrainConfig(epochs=5, seed=0))
print(f"test accuracy after 5 epochs: {result.final['test_acc']:.3f}")

net = nets.load(model)  # a live view: ordered affine maps with their activations
for layer in net:
    print(f"{layer.name:>3} {layer.kind:<7} {layer.in_shape} -> {layer.out_shape} {layer.activation}")

trace = net.trace(ds.test.x[:100])  # every pre-activation and ReLU pattern
active = [m.float().mean().item() for m in trace.masks if m is not None]
print("fraction of active units per ReLU layer:", [round(a, 3) for a in active])

path, _ = build_report(ReportContext(model=model, net=net, data=ds, training=result,
                                     out_dir="quickstart-report"), only=["model", "training"])
print("report:", path)
