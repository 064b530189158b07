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
from functools import partial

import torch

from .._display import Tabular
from .._frames import frame
from ..errors import ConfigError
from ._sampler import as_net, generator_from, relu_layer_indices, sample

MEASURES = ("input", "input_scaled", "hidden")


@dataclass(frozen=True)
class LayerReconstruction(Tabular):
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

    def frame_rows(self) -> list[dict]:
        """One row per weights (trained, random): `error_rel_<kind>_<measure>` for kind sample/mean
        and measure input/input_scaled/hidden (relative squared errors)."""
        return [dict(layer=self.layer, name=self.name, node=self.node, units=self.units, weights=w,
                     **{f"error_rel_{k}_{m}": v for k, by_m in by_kind.items() for m, v in by_m.items()})
                for w, by_kind in self.errors.items()]

    def to_frame(self):
        """One row per weights (see `frame_rows`)."""
        return frame(self.frame_rows())


@dataclass(frozen=True)
class Reconstruction(Tabular):
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

    def to_frame(self):
        """One row per layer and weights (trained, random); see `LayerReconstruction.frame_rows`."""
        return frame([r for lay in self.layers for r in lay.frame_rows()])

    def _figures(self):
        from ._plots import plot_reconstruction_errors

        caption = ("Relative reconstruction error per layer: trained weights should stay near the random "
                   "ones")
        yield plot_reconstruction_errors(self), caption


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


def _per_image(code, x: torch.Tensor, h: torch.Tensor, xt: torch.Tensor) -> dict:
    """Per-image relative errors (`hidden_ok`: images whose code is nonzero)."""
    xf, xtf = x.flatten(1).double(), xt.flatten(1).double()
    ht = code(xt).flatten(1).double()
    hf = h.flatten(1).double()
    cos2 = (xf * xtf).sum(1).pow(2) / (xf.pow(2).sum(1) * xtf.pow(2).sum(1)).clamp(min=1e-300)
    hn = hf.pow(2).sum(1)
    return dict(input=((xtf - xf).pow(2).sum(1) / xf.pow(2).sum(1)).cpu(), input_scaled=(1 - cos2).cpu(),
                hidden=((ht - hf).pow(2).sum(1) / hn).cpu(), hidden_ok=(hn > 0).cpu())


def _means(parts: list[dict]) -> dict:
    """The errors over all images: means of the per-image errors of every batch, in order."""
    per = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    ok = per["hidden_ok"]
    return dict(input=float(per["input"].mean()), input_scaled=float(per["input_scaled"].mean()),
                hidden=float(per["hidden"][ok].mean()) if ok.any() else float("nan"))


@torch.no_grad()
def reconstruct(net, x: torch.Tensor, *, layers=None, rho: float = 0.5, alpha="fit",
                generator: torch.Generator | int | None = 0, batch: int | None = None,
                scheduler: str | None = None) -> Reconstruction:
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
        batch: images per batch (default: all in one). Each batch fits its own α ("fit") and
            draws its own dropout noise (the first batch the same noise as one batch of all
            images), so a batch size gives the same numbers wherever the batches run; the
            errors are means over all images.
        scheduler: address of a Dask scheduler (`tcp://host:8786`): the batches run there
            (`reluscope._distribute.map_samples`), with the results of a local run with the
            same `batch`. Without `batch`, all images make one task.

    Returns:
        A `Reconstruction` with errors per layer and the averaged reconstructions. On a graph
        that is not a chain they are measurements: the theorems are proved for chains only.
    """
    net = as_net(net, tuple(x.shape[1:]))
    x = x.to(net.device, net.dtype)
    net.check_input(x)
    if bool((x.flatten(1).pow(2).sum(1) == 0).any()):
        raise ConfigError("an image is all zeros; its relative error is undefined; drop it")
    if batch is not None and batch < 1:
        raise ConfigError(f"batch must be at least 1 image, got {batch}")
    if net.is_chain:
        sites = [(i, net.layers[i].name, math.prod(net.layers[i].out_shape), None)
                 for i in relu_layer_indices(net, layers)]
    else:
        from ._graph_shadow import relu_sites, site_index

        sites = [(site_index(net, node), node.name, math.prod(node.out_shape), node.name)
                 for node in relu_sites(net, layers)]
    gen = generator_from(generator if generator is not None else 0, "cpu")
    nets_ = {"trained": net, "random": random_like(net, gen)}
    noise_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    size = batch or len(x)
    batches = [(k, x[lo:lo + size]) for k, lo in enumerate(range(0, len(x), size))]
    from .._distribute import map_samples

    work = partial(_reconstruct_batch, nets_, sites, rho, alpha, noise_seed)
    parts = map_samples(work, batches, scheduler=scheduler, workers=1, chunk=1, desc="reconstruction batches")
    out, images = [], {}
    for s, (i, name, units, node) in enumerate(sites):
        errors = {}
        for kind in nets_:
            got = [p[s][kind] for p in parts]
            errors[kind] = {m: _means([g[m] for g in got]) for m in ("sample", "mean")}
            images[(kind, i)] = torch.cat([g["image"] for g in got])
        out.append(LayerReconstruction(i, name, units, errors, node=node))
    return Reconstruction(out, float(rho), len(x), x.cpu(), images, chain=net.is_chain)


def _batch_noise(noise_seed: int, k: int, device) -> torch.Generator:
    """The dropout noise of batch k: batch 0 draws from `noise_seed` itself."""
    if k == 0:
        return generator_from(noise_seed, device)
    import numpy as np

    seed = int(np.random.SeedSequence([noise_seed, k]).generate_state(1, np.uint64)[0] >> 1)
    return generator_from(seed, device)


@torch.no_grad()
def _reconstruct_batch(nets_: dict, sites: list, rho, alpha, noise_seed: int, item) -> list[dict]:
    """Per-image errors and reconstructions of one batch `item = (k, x)`, per site and weights."""
    k, x = item
    noise = _batch_noise(noise_seed, k, nets_["trained"].device)
    out = []
    for i, _, _, node in sites:
        site = i if node is None else node  # a chain's layer index, or a graph's node name
        per = {}
        for kind, n in nets_.items():
            code = partial(_code, n, site)
            h = code(x)
            xs = _down(n, site, h, rho=rho, alpha=alpha, generator=noise)
            xm = _down(n, site, h, rho=1.0, alpha=alpha)
            per[kind] = dict(sample=_per_image(code, x, h, xs), mean=_per_image(code, x, h, xm),
                             image=xm.cpu())
        out.append(per)
    return out


def _code(net, site: int | str, x: torch.Tensor) -> torch.Tensor:
    """The code of inputs `x` at a site: a chain's layer `site`, or a graph's node `site`."""
    x = x.to(net.dtype)
    return net.forward(x, upto=site) if isinstance(site, int) else net.run(x, keep=[site])[site]


def _down(net, site: int | str, h: torch.Tensor, **kw) -> torch.Tensor:
    """The shadow sample from codes `h` at a site. A node name goes to `graph_sample` as is:
    `sample` would take the chain path on a random net that `random_like` loaded as a chain
    (a chain viewed as a plain graph), where the name would address a layer, not a node."""
    if isinstance(site, int):
        return sample(net, h, layer=site, **kw)
    from ._graph_shadow import graph_sample

    return graph_sample(net, h, site, **kw)
