"""SHADOW in a plain PyTorch training loop: each batch gains shadow samples of its real ones.

Run: python examples/shadow_loop.py

`ShadowAugment` reads the model live, so the synthetic samples always come from the
current weights; they are computed without autograd (no gradient reaches the sampler).
"""

import torch
import torch.nn.functional as F

from reluscope import data, nets
from reluscope.shadow import ShadowAugment
from reluscope.train import evaluate

ds = data.load("digits")
torch.manual_seed(0)
model = nets.mlp([64, 256, 256, 10])
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
# the theory's defaults: codes from the first hidden layer, rho 0.75, one synthetic sample per
# four real ones, each at its real image's norm and clipped to the batch's range
aug = ShadowAugment(model, seed=0)

for epoch in range(5):
    for idx in torch.randperm(len(ds.train)).split(64):
        x, y = aug(ds.train.x[idx], ds.train.y[idx])  # 64 real + 16 shadow samples, labels carried
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, acc = evaluate(model, ds.test.x, ds.test.y)
    print(f"epoch {epoch + 1}: test accuracy {acc:.3f}")
print("the theory's conditions:", aug.conditions())
