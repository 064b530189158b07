"""Reverse-then-forward: sample `x~` from a code `h`, run the layer forward, compare.

Offset rules for the forward pass `h~ = r(W_torch x~ + b)` (Theorem 1):
- `none`: `b = 0`;
- `theory`: `b = -δ ||h||` with `δ = 2 sqrt(ln m / t)`, `t = ρ · fan_in`: the expected
  maximum over the m units of the noise `W_torch x~ - h`, whose standard deviation is
  `sqrt(2/t) ||h||` for i.i.d. weights (the proof's `δ = Õ(1/sqrt t)` with its constant made
  explicit), so it zeroes the units where `h_i = 0` with good probability;
- `best`: `b = -θ* ||h||` with the single θ minimising the mean relative error over the
  batch, found exactly (the error is piecewise quadratic in θ; see `best_threshold`);
- `net`: the layer's own bias (what the trained net does; 0 for a bias-free layer).

Theorem 1 is proved for one random ReLU layer, i.e. for chains. On a graph that is not a
chain (residual adds, concatenations) the "layer" of a ReLU node is its block: the linear
part back to the nearest ReLU nodes and the input (for a residual block, both branches); the
same rules are measured there (`net` is the block's total bias, `t = ρ ·` the inputs feeding
one unit of the block), but nothing is predicted: the numbers are measurements.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from .._display import Tabular
from .._frames import frame
from ..errors import ShapeError, UnsupportedLayerError
from ._sampler import as_net, fan_in, generator_from, relu_layer_indices, resolve_layer, sample

RULES = ("none", "theory", "best", "net")


@dataclass(frozen=True)
class Reversibility(Tabular):
    """Relative errors `||h~ - h||² / ||h||²` of one layer under each offset rule.

    Attributes:
        errors: rule -> mean relative error over the codes; `errors_std` the std.
        theta: the best threshold θ* (offset `-θ* ||h||`); `delta` the theory rule's δ.
        t: `ρ · fan_in`, the paper's expected number of kept inputs per unit.
        k: mean number of nonzeros of the codes; m: units of the layer.
        codes: codes used (codes with `h = 0` are skipped and counted in `skipped`).
        layer, name: the layer's index and name; on a graph, the ReLU node's position among
            the ReLU nodes and its node name (`extra["frontier"]`: the nodes its block reads).
    """

    layer: int
    name: str
    rho: float
    t: float
    m: int
    k: float
    errors: dict[str, float]
    errors_std: dict[str, float]
    theta: float
    delta: float
    codes: int
    skipped: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self):
        """One row: the layer, `rho`, `t`, `m`, `k`, `theta`, `delta`, `codes`, `skipped`, and per offset
        rule `error_rel_<rule>` (mean relative squared error) and `error_rel_std_<rule>`. The list of
        `reversibility_by_layer` stacks with `reluscope.to_frame(results)`."""
        row = dict(layer=self.layer, name=self.name, rho=self.rho, t=self.t, m=self.m, k=self.k,
                   theta=self.theta, delta=self.delta, codes=self.codes, skipped=self.skipped)
        row.update({f"error_rel_{r}": v for r, v in self.errors.items()})
        row.update({f"error_rel_std_{r}": v for r, v in self.errors_std.items()})
        return frame([row])


def best_threshold(u: torch.Tensor, v: torch.Tensor) -> tuple[float, float]:
    """The θ minimising `mean_b Σ_i (r(u_bi - θ) - v_bi)²` exactly, and that minimum.

    `u = W x~ / ||h||` and `v = h / ||h||` (one row per code), so θ is a threshold in units
    of `||h||`. For θ between two consecutive sorted values of `u` the active set is fixed and
    the error is a quadratic in θ; each piece is minimised in closed form.

    >>> import torch
    >>> best_threshold(torch.tensor([[2.0, 0.5]]), torch.tensor([[1.0, 0.0]]))
    (1.0, 0.0)
    """
    rows = u.shape[0] if u.dim() > 1 else 1
    u = u.reshape(-1).double()
    v = v.reshape(-1).double()
    order = torch.argsort(u)
    us, vs = u[order], v[order]
    d = us - vs  # active unit's error is (d - θ)²
    n = u.numel()
    # suffix sums over the active set {j >= s}: count, Σd, Σd²; prefix Σv² of inactive units
    zero = u.new_zeros(1)  # on u's device: the search runs where the codes are
    suf_n = torch.arange(n, -1, -1, dtype=u.dtype, device=u.device)
    suf_d = torch.cat([torch.flip(torch.cumsum(torch.flip(d, [0]), 0), [0]), zero])
    suf_d2 = torch.cat([torch.flip(torch.cumsum(torch.flip(d * d, [0]), 0), [0]), zero])
    pre_v2 = torch.cat([zero, torch.cumsum(vs * vs, 0)])
    lo = torch.cat([u.new_full((1,), -math.inf), us])  # θ in [lo_s, hi_s): units >= s active
    hi = torch.cat([us, u.new_full((1,), math.inf)])
    theta = torch.where(suf_n > 0, suf_d / suf_n.clamp(min=1), lo)
    theta = torch.minimum(torch.maximum(theta, lo), hi)
    theta = torch.where(torch.isfinite(theta), theta, torch.where(torch.isfinite(lo), lo, hi))
    cost = suf_d2 - 2 * theta * suf_d + suf_n * theta * theta + pre_v2
    best = int(torch.argmin(cost))
    return float(theta[best]), float(cost[best]) / rows


def relative_errors(h_tilde: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """`||h~ - h||² / ||h||²` per code (row)."""
    h, h_tilde = h.flatten(1).double(), h_tilde.flatten(1).double()
    return (h_tilde - h).pow(2).sum(1) / h.pow(2).sum(1)


@torch.no_grad()
def reversibility(net, h: torch.Tensor, *, layer: int | str | None = None, rho: float = 0.5,
                  alpha: str | float = "scaled", exact_k: bool = False,
                  generator: torch.Generator | int | None = None,
                  input_shape: tuple[int, ...] | None = None) -> Reversibility:
    """Sample one layer down from codes `h`, go forward again, and measure the error per offset rule.

    Arguments:
        net: a `reluscope.nets.ReluNet`, any loaded `Graph`, or an `nn.Module` (loaded on the
            fly; `input_shape` when it cannot be inferred). Layer `layer` must be a ReLU layer;
            on a graph, a ReLU node (name, or position among the ReLU nodes), whose block is
            reversed (see the module: measurements only, the theorem is for chains).
        h: codes `(B, *out_shape)` of that layer (nonnegative, e.g. a layer's activations).
        layer: as in `sample` (one layer).
        rho: as in `sample`.
        alpha: as in `sample`.
        exact_k: as in `sample`.
        generator: as in `sample`.

    Returns:
        A `Reversibility` with the mean relative error under `none`, `theory`, `best`, `net`.

    >>> import torch
    >>> from reluscope import nets
    >>> net = nets.load(nets.mlp([400, 200, 10]), input_shape=(400,))
    >>> h = net.forward(torch.rand(16, 400), upto=0)
    >>> r = reversibility(net, h, layer=0, rho=0.5, generator=0)
    >>> r.errors["best"] <= r.errors["none"]
    True
    """
    net = as_net(net, input_shape)
    if not net.is_chain:
        return _graph_reversibility(net, h, layer, rho=rho, alpha=alpha, exact_k=exact_k, generator=generator)
    i = resolve_layer(net, h, layer)
    lay = net.layers[i]
    if not lay.is_relu:
        raise UnsupportedLayerError(f"layer {i} ('{lay.name}') has activation '{lay.activation}'; "
                                    "reversibility is measured on ReLU layers")
    h, norms, ok = _nonzero_codes(h, f"layer {i}")
    gen = generator_from(generator, h.device)
    x = sample(net, h, layer=i, rho=rho, until=i, alpha=alpha, exact_k=exact_k, generator=gen)
    z = lay.affine(x.to(lay.weight.dtype), bias=False).double().flatten(1)
    if lay.kind == "linear":
        bias = lay.bias.detach().double().reshape(1, -1)
    else:  # a conv's bias is per channel: broadcast it over the output map
        zero = torch.zeros(1, *lay.in_shape, dtype=lay.weight.dtype, device=lay.weight.device)
        bias = lay.affine(zero).double().reshape(1, -1)
    return _measure(z, bias, h, norms[ok], rho, fan_in(lay), ok, layer=i, name=lay.name)


def _nonzero_codes(h: torch.Tensor, where: str):
    if (h < 0).any():
        raise ShapeError(f"codes of {where} have negative entries; a ReLU layer's code is nonnegative")
    norms = h.flatten(1).double().norm(dim=1)
    ok = norms > 0
    if not bool(ok.any()):
        raise ShapeError(f"all {len(h)} codes of {where} are zero; nothing to reverse")
    return h[ok], norms, ok


def _measure(z, bias, h, c, rho, fan, ok, **fields) -> Reversibility:
    hf, c = h.flatten(1).double(), c[:, None]
    m = hf.shape[1]
    t = rho * fan
    delta = 2.0 * math.sqrt(math.log(max(m, 2)) / t)
    theta, _ = best_threshold(z / c, hf / c)
    outs = {"none": z, "theory": z - delta * c, "best": z - theta * c, "net": z + bias}
    errs = {rule: relative_errors(torch.relu(o), hf) for rule, o in outs.items()}
    return Reversibility(
        **fields, rho=float(rho), t=float(t), m=m,
        k=float((hf > 0).sum(1).double().mean()),
        errors={r: float(e.mean()) for r, e in errs.items()},
        errors_std={r: float(e.std()) if len(e) > 1 else 0.0 for r, e in errs.items()},
        theta=theta, delta=delta, codes=int(ok.sum()), skipped=int((~ok).sum()))


def _graph_reversibility(graph, h, layer, *, rho, alpha, exact_k, generator) -> Reversibility:
    from ._graph_shadow import (
        block_fan_in,
        block_forward,
        block_of,
        resolve_code_node,
        shadow_sites,
        site_index,
    )

    node = resolve_code_node(graph, h, layer)
    blk = block_of(graph, node)
    h, norms, ok = _nonzero_codes(h, f"node '{node.name}'")
    xs = shadow_sites(graph, h, node, rho=rho, alpha=alpha, exact_k=exact_k, generator=generator,
                      one_block=True)
    z = block_forward(graph, blk, xs).double().flatten(1)
    bias = block_forward(graph, blk, {}, bias=True, batch=1).double().reshape(1, -1)
    return _measure(z, bias, h, norms[ok], rho, block_fan_in(graph, blk), ok, layer=site_index(graph, node),
                    name=node.name, extra=dict(frontier=[f.name for f in blk.frontier]))


@torch.no_grad()
def reversibility_by_layer(net, x: torch.Tensor, *, layers=None, rho: float = 0.5,
                           alpha: str | float = "scaled",
                           generator: torch.Generator | int | None = None) -> list[Reversibility]:
    """`reversibility` at several ReLU layers, with codes `h` computed from real inputs `x`.

    Arguments:
        net: a `ReluNet`, a `Graph` or an `nn.Module` (its input shape taken from `x`).
        x: a batch of inputs `(B, *net.input_shape)`.
        layers: indices or names (default: every ReLU layer); on a graph, ReLU node names
            (or positions among the ReLU nodes), measured on their blocks.

    Returns:
        One `Reversibility` per layer, in the order given.
    """
    net = as_net(net, tuple(x.shape[1:]))
    x = x.to(net.device, net.dtype)
    gen = generator_from(generator, net.device)
    if not net.is_chain:
        from ._graph_shadow import relu_sites

        nodes = relu_sites(net, layers)
        codes = net.run(x, keep=[n.name for n in nodes])
        return [reversibility(net, codes[n.name], layer=n.name, rho=rho, alpha=alpha, generator=gen)
                for n in nodes]
    trace = net.trace(x)
    idx = relu_layer_indices(net, layers)
    return [reversibility(net, trace.post[i], layer=i, rho=rho, alpha=alpha, generator=gen) for i in idx]
