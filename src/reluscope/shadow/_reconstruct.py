"""Reconstruction of real images: push each hidden layer's code down with the shadow model.

For a batch of images and each ReLU layer i: `h = f_i(x)`, `x~ = sample(net, h, layer=i)`
down to the input, with the trained weights and with random weights of the same shapes
and scale (each weight tensor redrawn as N(0, mean square of the trained one), each bias as
N(mean, std of the trained one); the random net computes its own codes from x).

Errors (means over the images), the measures of Gilbert et al. (PAPERS.md §1):
- `input`: `||x~ - x||² / ||x||²` in image space;
- `input_scaled`: the same after the best scalar rescaling of x~ (`1 - cos²(x~, x)`), which
  separates the shape of the reconstruction from its overall scale;
- `hidden`: `||f_i(x~) - h||² / ||h||²`, the net's own forward pass (own biases) on x~.
Each is given for one dropout sample (`sample`, keep-probability ρ) and for the average over
the dropout noise (`mean`, which is the ρ = 1 sample since α scales as 1/ρ).

Graphs. On a model that is not a chain (a ResNet, a DenseNet) the codes are taken at ReLU
nodes, named by node name (`stage1.0.relu2`), and pushed down the graph's transpose
(`sample_graph`; "fit" fits one scale per ReLU node). The shadow model's theorems are proved
for chains only: on a graph these errors are measurements, not predictions.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from ._sampler import as_net, generator_from, relu_layer_indices, sample

MEASURES = ("input", "input_scaled", "hidden")


@dataclass(frozen=True)
class LayerReconstruction:
    """Errors of one layer: `errors[weights][kind][measure]`, weights in trained/random,
    kind in sample/mean, measure in input/input_scaled/hidden.

    On a chain `layer` is the layer index and `name` the layer's name; on a graph `layer` is
    the ReLU node's position among the ReLU nodes, `name` and `node` its node name."""

    layer: int
    name: str
    units: int
    errors: dict
    node: str | None = None

    @property
    def label(self) -> str:
        """`L3` on a chain, the node name on a graph."""
        return self.node if self.node is not None else f"L{self.layer}"

    def to_dict(self) -> dict:
        out = dict(layer=self.layer, name=self.name, units=self.units, errors=self.errors)
        if self.node is not None:
            out["node"] = self.node
        return out


@dataclass(frozen=True)
class Reconstruction:
    """Per-layer errors plus the images (kept out of `to_dict`): `originals` and
    `images[(weights, layer)]`, the dropout-averaged reconstructions."""

    layers: list[LayerReconstruction]
    rho: float
    count: int
    originals: torch.Tensor = field(repr=False)
    images: dict = field(repr=False, default_factory=dict)
    chain: bool = True

    def to_dict(self) -> dict:
        out = dict(rho=self.rho, images=self.count, layers=[lay.to_dict() for lay in self.layers])
        if not self.chain:
            out["chain"] = False  # measurements only: the theorems are for chains
        return out


def random_like(net, generator: torch.Generator, input_shape: tuple[int, ...] | None = None):
    """The same view (chain or graph) over a copy of the model (`net`: an `nn.Module` or a
    loaded graph) with Gaussian weights of the same shapes and scale (biases redrawn from
    their own mean and std)."""
    from .. import nets

    net = nets.as_graph(net, input_shape)
    model = copy.deepcopy(net.model)
    rnet = nets.load(model, input_shape=net.input_shape)
    layers = rnet.layers if rnet.is_chain else [n.layer for n in rnet.affine_nodes()]
    seen: set[int] = set()
    with torch.no_grad():
        for layer in layers:
            if not rnet.is_chain:  # pools, unfolded batch norms: no weights; a shared module: once
                if not layer.has_weight or layer.kind == "batchnorm" or id(layer.module) in seen:
                    continue
                seen.add(id(layer.module))
            w, b = layer._raw()
            if not isinstance(w, torch.nn.Parameter):
                continue  # average pooling: fixed weights, nothing learned
            rms = w.pow(2).mean().sqrt()
            # drawn on the CPU generator, then moved: the same weights on every device
            w.copy_(torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device) * rms)
            if isinstance(b, torch.nn.Parameter) and b.numel() > 1:
                b.copy_(torch.randn(b.shape, generator=generator, dtype=b.dtype).to(b.device) * b.std()
                        + b.mean())
    return rnet


def _errors(code, x: torch.Tensor, h: torch.Tensor, xt: torch.Tensor) -> dict:
    xf, xtf = x.flatten(1).double(), xt.flatten(1).double()
    ht = code(xt).flatten(1).double()
    hf = h.flatten(1).double()
    cos2 = (xf * xtf).sum(1).pow(2) / (xf.pow(2).sum(1) * xtf.pow(2).sum(1)).clamp(min=1e-300)
    hn = hf.pow(2).sum(1)
    ok = hn > 0
    return dict(input=float(((xtf - xf).pow(2).sum(1) / xf.pow(2).sum(1)).mean()),
                input_scaled=float((1 - cos2).mean()),
                hidden=float(((ht - hf).pow(2).sum(1)[ok] / hn[ok]).mean()) if ok.any() else float("nan"))


@torch.no_grad()
def reconstruct(net, x: torch.Tensor, *, layers=None, rho: float = 0.5, alpha="fit",
                generator: torch.Generator | int | None = 0) -> Reconstruction:
    """Reconstruct images `x` from every ReLU layer with trained and with random weights.

    Arguments:
        net: a `reluscope.nets.ReluNet` (MLP or CNN; conv layers reverse as transposed convs),
            any loaded `Graph` (ResNet, DenseNet: codes at ReLU nodes, reversed through the
            graph's transpose) or an `nn.Module` (loaded with `x`'s shape); it is run on its
            own device and dtype.
        x: images `(B, *net.input_shape)`, nonzero.
        layers: layer indices or names (default: every ReLU layer); on a graph, ReLU node
            names (or positions among the ReLU nodes).
        rho: keep probability of the dropout noise at every reversed layer.
        alpha: scale rule of `sample`; default "fit": real codes are computed from x with
            the same W, so W Wᵀ h is far from the Gaussian prediction and the theory's α
            ("scaled") misplaces the scale by about (units / fan_in) per layer; "fit" keeps
            the model's form and sets each α by least squares (`input_scaled` is α-free).
        generator: seed or generator (random weights and noise).

    Returns:
        A `Reconstruction` with errors per layer and the averaged reconstructions. On a graph
        that is not a chain they are measurements: the theorems are proved for chains only.
    """
    net = as_net(net, tuple(x.shape[1:]))
    x = x.to(net.device, net.dtype)
    net.check_input(x)
    if bool((x.flatten(1).pow(2).sum(1) == 0).any()):
        raise ConfigError("an image is all zeros; its relative error is undefined; drop it")
    if not net.is_chain:
        return _reconstruct_graph(net, x, layers, rho, alpha, generator)
    idx = relu_layer_indices(net, layers)
    gen = generator_from(generator if generator is not None else 0, "cpu")
    nets_ = {"trained": net, "random": random_like(net, gen)}
    noise = generator_from(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)), net.device)
    out, images = [], {}
    for i in idx:
        errors = {}
        for kind, n in nets_.items():
            h = n.forward(x, upto=i)
            xs = sample(n, h, layer=i, rho=rho, alpha=alpha, generator=noise)
            xm = sample(n, h, layer=i, rho=1.0, alpha=alpha)

            def code(xt, n=n, i=i):
                return n.forward(xt.to(n.dtype), upto=i)

            errors[kind] = dict(sample=_errors(code, x, h, xs), mean=_errors(code, x, h, xm))
            images[(kind, i)] = xm.cpu()
        out.append(LayerReconstruction(i, net.layers[i].name, math.prod(net.layers[i].out_shape), errors))
    return Reconstruction(out, float(rho), len(x), x.cpu(), images)


def _reconstruct_graph(net, x, layers, rho, alpha, generator) -> Reconstruction:
    from ._graph_shadow import graph_sample, relu_sites, site_index

    nodes = relu_sites(net, layers)
    gen = generator_from(generator if generator is not None else 0, "cpu")
    nets_ = {"trained": net, "random": random_like(net, gen)}
    noise = generator_from(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)), net.device)
    out, images = [], {}
    for node in nodes:
        errors = {}
        i = site_index(net, node)
        for kind, n in nets_.items():
            h = n.run(x, keep=[node.name])[node.name]
            xs = graph_sample(n, h, node.name, rho=rho, alpha=alpha, generator=noise)
            xm = graph_sample(n, h, node.name, rho=1.0, alpha=alpha)

            def code(xt, n=n, name=node.name):
                return n.run(xt.to(n.dtype), keep=[name])[name]

            errors[kind] = dict(sample=_errors(code, x, h, xs), mean=_errors(code, x, h, xm))
            images[(kind, i)] = xm.cpu()
        out.append(LayerReconstruction(i, node.name, math.prod(node.out_shape), errors, node=node.name))
    return Reconstruction(out, float(rho), len(x), x.cpu(), images, chain=False)
