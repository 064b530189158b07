"""The shadow generative model: a ReLU net run backwards (Arora, Liang, Ma 2015).

Convention. The paper writes a feed-forward layer as `h = r(Wᵀx + b)` with `W` n×m.
A torch layer stores `W_torch = Wᵀ` (shape `(m, n)`) and computes `W_torch x`, so one
shadow step from a code `h` (a layer's output) to that layer's input is

    x~ = r(α · W_torchᵀ h) ⊙ keep,        keep_j ~ Bernoulli(ρ)   (eq. 1, eq. 4)

A conv layer's `W_torchᵀ` is the transposed convolution with the layer's own weights
and stride/padding/dilation/groups; other kinds use the exact adjoint (autograd).

The scale α. The paper takes `W_ij ~ N(0, 1)` and `α = 2/(ρ n) = 2/t`: by Stein's lemma
`E[W_torch x~] = ρ · fan_in · σ² · α/2 · h`, so `α = 2 / (ρ · fan_in · σ²)` makes the
forward pass recover `h` in expectation for i.i.d. weights of variance σ².
`alpha="paper"` uses `σ² = 1` (eq. 1 verbatim; `fan_in = n` for a dense layer);
`alpha="scaled"` uses the layer's mean squared row norm for `fan_in · σ²`, which is the
same thing for Gaussian weights and the right scale for trained ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, ShapeError, UnsupportedLayerError
from ..nets import as_graph, require_chain

_SAMPLEABLE = ("relu", "identity")


def transpose(layer, h: torch.Tensor) -> torch.Tensor:
    """`W_torchᵀ h` for a batch of codes: the adjoint of the layer's linear part.

    Arguments:
        layer: a `reluscope.nets.Layer`.
        h: codes of shape `(B, *layer.out_shape)` (or `(B, numel)`).

    Returns:
        A tensor `(B, *layer.in_shape)` in `h`'s dtype and device.

    >>> import torch
    >>> from reluscope import nets
    >>> net = nets.load(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False)), input_shape=(3,))
    >>> transpose(net[0], torch.ones(1, 2)).shape
    torch.Size([1, 3])
    """
    if not layer.has_weight or layer.kind == "batchnorm":  # graph-only kinds: the exact adjoint
        return _adjoint(layer, h.reshape(h.shape[0], *layer.out_shape))
    w, _ = layer.parameters()
    w = w.detach().to(device=h.device, dtype=h.dtype)
    batch = h.shape[0]
    if layer.kind == "linear":
        return (h.reshape(batch, -1) @ w).reshape(batch, *layer.in_shape)
    h = h.reshape(batch, *layer.out_shape)
    if layer.kind in ("conv2d", "avgpool2d"):
        args = _transpose_conv_args(layer, w)
        if args is not None:
            return F.conv_transpose2d(h, w, **args)
    return _adjoint(layer, h)


def _transpose_conv_args(layer, w: torch.Tensor) -> dict | None:
    """Arguments making conv_transpose2d the exact adjoint, or None (use autograd)."""
    a = layer.conv_args
    if isinstance(a["padding"], str):
        return None  # 'same'/'valid' strings: the generic adjoint handles them exactly
    k = w.shape[-2:]
    out_pad = []
    for d in range(2):
        full = ((layer.out_shape[1 + d] - 1) * a["stride"][d] - 2 * a["padding"][d]
                + a["dilation"][d] * (k[d] - 1) + 1)
        out_pad.append(layer.in_shape[1 + d] - full)
    if any(p < 0 or p >= max(a["stride"][d], a["dilation"][d]) for d, p in enumerate(out_pad)):
        return None
    return dict(stride=a["stride"], padding=a["padding"], output_padding=tuple(out_pad),
                groups=a["groups"], dilation=a["dilation"])


def _adjoint(layer, h: torch.Tensor) -> torch.Tensor:
    # The map is linear in x, so its vector-Jacobian product at any point is Wᵀh.
    with torch.enable_grad():
        x = torch.zeros(h.shape[0], *layer.in_shape, dtype=h.dtype, device=h.device, requires_grad=True)
        z = _affine_in(layer, x, h.dtype)
        (g,) = torch.autograd.grad(z, x, grad_outputs=h.reshape(z.shape))
    return g


def _affine_in(layer, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if not layer.has_weight or layer.kind == "batchnorm":  # pools, unfolded batch norms
        return layer.affine(x.to(layer.dtype), bias=False).to(dtype)
    if layer.weight.dtype == dtype:
        return layer.affine(x, bias=False)
    # Cast through a float64-safe copy of the parameters when dtypes differ.
    w, _ = layer.parameters()
    w = w.detach().to(dtype)
    if layer.kind == "locally_connected":
        m = layer.module
        oh, ow = m.out_size
        patches = F.unfold(x, m.kernel_size, stride=m.stride)
        patches = patches.transpose(1, 2).reshape(x.shape[0], oh, ow, -1)
        return torch.einsum("bhwk,hwok->bohw", patches, w)
    return F.conv2d(x, w, None, **layer.conv_args)


def _window(layer) -> int:
    """Inputs averaged into one output of a parameter-free pool (its window, on average)."""
    return max(1, round(math.prod(layer.in_shape) / math.prod(layer.out_shape)))


def fan_in(layer) -> int:
    """Inputs feeding one output unit: `n` for a dense layer, `C_in/groups · kh · kw` for a conv
    (the window for a parameter-free pool, 1 for a batch norm)."""
    if not layer.has_weight:
        return _window(layer)
    if layer.kind == "batchnorm":
        return 1
    w, _ = layer.parameters()
    return int(w.shape[-1]) if layer.kind in ("linear", "locally_connected") else int(w[0].numel())


def weight_power(layer) -> float:
    """Mean squared norm of a row of the layer's matrix (`fan_in · σ²` for i.i.d. weights)."""
    if not layer.has_weight:
        return 1.0 / _window(layer)  # a row of `window` entries 1/window
    w, _ = layer.parameters()
    w = w.detach().double()
    if w.dim() == 1:  # an unfolded batch norm: a diagonal map
        return float(w.pow(2).mean())
    rows = w.pow(2).sum(-1) if layer.kind in ("linear", "locally_connected") else w.pow(2).flatten(1).sum(1)
    return float(rows.mean())


def layer_alpha(layer, rho: float, alpha: str | float = "scaled") -> float:
    """The scale α of one shadow step: `2 / (ρ · fan_in)` ("paper") or `2 / (ρ · ||row||²)` ("scaled").

    >>> import torch
    >>> from reluscope import nets
    >>> net = nets.load(torch.nn.Sequential(torch.nn.Linear(100, 5)), input_shape=(100,))
    >>> layer_alpha(net[0], 0.5, "paper")
    0.04
    """
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        if not alpha > 0:
            raise ConfigError(f"alpha must be positive, got {alpha}")
        return float(alpha)
    if alpha == "paper":
        return 2.0 / (rho * fan_in(layer))
    if alpha == "scaled":
        power = weight_power(layer)
        if not power > 0 or not math.isfinite(power):
            raise UnsupportedLayerError(f"layer '{layer.name}' has zero or non-finite weights; "
                                        "the shadow model cannot reverse it")
        return 2.0 / (rho * power)
    raise ConfigError(f"alpha '{alpha}' is unknown; use 'paper', 'scaled', 'fit' (in sample) "
                      "or a positive number")


def keep_mask(shape: tuple[int, ...], rho: float, *, exact_k: bool = False,
              generator: torch.Generator | None = None, dtype=torch.float32,
              device: torch.device | str = "cpu", scale: float = 1.0) -> torch.Tensor:
    """Dropout noise `s_k`: `scale` where kept, 0 elsewhere; keeps per sample (dim 0).

    Independent keeps with probability `rho` (see `bernoulli_keep`), or (`exact_k=True`)
    exactly `round(rho · n)` coordinates per sample, uniformly at random.
    """
    if exact_k:
        gen_device = generator.device if generator is not None else torch.device(device)
        flat = torch.rand(shape[0], math.prod(shape[1:]), generator=generator, device=gen_device)
        k = int(round(rho * flat.shape[1]))
        mask = torch.zeros_like(flat)
        if k > 0:
            mask.scatter_(1, flat.topk(k, dim=1).indices, scale)
        return mask.reshape(shape).to(device=device, dtype=dtype)
    mask = bernoulli_keep(shape, rho, generator=generator, device=device).to(dtype)
    return mask.mul_(scale) if scale != 1.0 else mask


# Bernoulli(rho) from raw random bits: one 64-bit draw gives 8, 4 or 2 uniform integers, so
# this costs a fraction of one float draw per coordinate (torch.rand) on the CPU.
_WIDTHS = ((8, torch.uint8, 0), (16, torch.int16, 1 << 15), (32, torch.int32, 1 << 31))


def bernoulli_keep(shape: tuple[int, ...], rho: float, *, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Independent keeps `u < rho` as a bool tensor, from `u` uniform on `2^w` levels.

    `w` is the fewest bits (8, 16 or 32) that hold `rho` exactly (`rho · 2^w` an integer),
    else 32: then `rho` is resolved to 2^-32, finer than a float32 uniform (2^-24).

    >>> import torch
    >>> keep = bernoulli_keep((1000, 100), 0.25, generator=torch.Generator().manual_seed(0))
    >>> keep.dtype, round(float(keep.float().mean()), 2)
    (torch.bool, 0.25)
    """
    if not 0 <= rho <= 1:
        raise ConfigError(f"rho must be in [0, 1], got {rho}")
    if rho == 1:
        return torch.ones(shape, dtype=torch.bool, device=device)
    gen_device = generator.device if generator is not None else torch.device(device)
    bits, view, offset = next((w for w in _WIDTHS if float(rho * (1 << w[0])).is_integer()), _WIDTHS[-1])
    threshold = round(rho * (1 << bits))
    n = math.prod(shape)
    words = torch.empty(-(-n * bits // 64), dtype=torch.int64, device=gen_device)
    words.random_(-(1 << 63), None, generator=generator)  # all 64 bits uniform
    levels = words.view(view)[:n]  # signed views are shifted by `offset`
    return (levels < threshold - offset).reshape(shape).to(device)



def _rhos(rho, count: int) -> list[float]:
    values = [float(rho)] * count if isinstance(rho, (int, float)) else [float(r) for r in rho]
    if len(values) != count:
        raise ConfigError(f"rho has {len(values)} values but {count} layers are reversed; "
                          "give one value or one per layer, from the top layer down")
    for r in values:
        if not 0 < r <= 1:
            raise ConfigError(f"rho must be in (0, 1], got {r}")
    return values


def resolve_layer(net, h: torch.Tensor, layer) -> int:
    """Index of the layer whose output `h` is: given, or the unique layer of that shape."""
    require_chain(net, "the shadow sampler")
    if layer is not None:
        try:
            return net.index(layer)
        except (IndexError, KeyError) as exc:
            raise ConfigError(f"layer {layer!r}: {exc.args[0]}") from None
    shape = tuple(h.shape[1:])
    found = [i for i, lay in enumerate(net.layers) if lay.out_shape == shape]
    if len(found) != 1:
        raise ShapeError(f"cannot tell which layer a code of shape {shape} comes from "
                         f"({len(found)} layers match); pass layer=")
    return found[0]


def relu_layer_indices(net, layers=None) -> list[int]:
    """Indices of `layers` (indices or names), or of every ReLU layer; a clear error if none."""
    require_chain(net, "the shadow model")
    try:
        idx = net.relu_layers() if layers is None else [net.index(k) for k in layers]
    except (IndexError, KeyError) as exc:
        raise ConfigError(f"layers {layers}: {exc.args[0]}") from None
    if not idx:
        raise ConfigError("the net has no ReLU layer to reverse")
    return idx


def generator_from(generator: torch.Generator | int | None, device="cpu") -> torch.Generator | None:
    """A generator from a seed (on `device`), or the one given, or None (global RNG)."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return torch.Generator(device=device).manual_seed(int(generator))


@torch.no_grad()
def sample_chain(net, h: torch.Tensor, *, layer: int | str | None = None, rho: float | Sequence[float] = 0.5,
                 until: int | str = 0, alpha: str | float | Sequence = "scaled", exact_k: bool = False,
                 generator: torch.Generator | int | None = None,
                 record: list | None = None) -> list[torch.Tensor]:
    """Draw from the shadow model from layer `layer`'s output down to layer `until`'s input.

    Arguments:
        net: a `reluscope.nets.ReluNet`.
        h: codes `(B, *net[layer].out_shape)`, any float dtype, on any device.
        layer: the layer `h` is the output of (index, negative index or name).
        rho: keep probability of the noise, one value or one per reversed layer (top down);
            eq. 4's `k_j` is `rho_j · n_j`.
        until: the lowest layer to reverse (default 0: down to the net's input).
        alpha: "scaled" (default), "paper", a number, "fit" (α per step fitted by least squares
            so that the layer maps x~ back onto h; for codes of real data, which depend on W and
            so break the theory's scale), or one of these per layer.
        exact_k: keep exactly `round(rho · n)` coordinates per sample instead of independent keeps.
        generator: a `torch.Generator` or an int seed (same seed, same sample).
        record: if a list, the α used at each step (top down) is appended to it (e.g. to
            reuse fitted values on later batches).

    Returns:
        `[h, h^(layer-1), ..., x~]`: every level of the sample, top first; the last one has
        the shape of layer `until`'s input.
    """
    net = require_chain(as_net(net), "sample_chain (use sample or sample_graph on a graph)")
    top = resolve_layer(net, h, layer)
    low = net.index(until)
    if low > top:
        raise ConfigError(f"until={until} is above layer={layer}; the sampler runs downwards")
    reversed_layers = list(range(top, low - 1, -1))
    for i in reversed_layers:
        lay = net.layers[i]
        if lay.activation not in _SAMPLEABLE:
            raise UnsupportedLayerError(
                f"layer {i} ('{lay.name}') has activation '{lay.activation}'; the shadow model "
                "reverses ReLU (or identity) layers only; sample from a layer above or below it")
    want = net.layers[top].out_shape
    if math.prod(h.shape[1:]) != math.prod(want) or h.dim() < 2:
        raise ShapeError(f"codes have shape {tuple(h.shape)} but layer {top} ('{net.layers[top].name}') "
                         f"outputs (batch, {', '.join(map(str, want))})")
    if not h.dtype.is_floating_point:
        raise ShapeError(f"codes must be floating point, got {h.dtype}")
    rhos = _rhos(rho, len(reversed_layers))
    alphas = list(alpha) if isinstance(alpha, (list, tuple)) else [alpha] * len(reversed_layers)
    if len(alphas) != len(reversed_layers):
        raise ConfigError(f"alpha has {len(alphas)} values for {len(reversed_layers)} layers")
    gen = generator_from(generator, h.device)
    out = [h]
    cur = h.reshape(h.shape[0], *want)
    for i, r, a in zip(reversed_layers, rhos, alphas):
        lay = net.layers[i]
        if a == "fit":
            cur, used = _fit_step(lay, cur, r, exact_k=exact_k, generator=gen)
        else:
            used = layer_alpha(lay, r, a)
            cur = step(lay, cur, r, alpha=used, exact_k=exact_k, generator=gen)
        if record is not None:
            record.append(used)
        below = net.layers[i - 1].out_shape if i > 0 else net.input_shape
        cur = cur.reshape(cur.shape[0], *below)
        out.append(cur)
    return out


def step(layer, h: torch.Tensor, rho: float, *, alpha: float, exact_k: bool = False,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """One shadow step `r(α W_torchᵀ h) ⊙ keep` (eq. 1), written to avoid extra passes."""
    if layer.kind == "linear":
        w = layer.parameters()[0].detach().to(device=h.device, dtype=h.dtype)
        flat = h.reshape(h.shape[0], -1)
        z = torch.empty(flat.shape[0], w.shape[1], dtype=h.dtype, device=h.device)
        torch.addmm(z, flat, w, beta=0, alpha=alpha, out=z)  # α folded into the GEMM
    else:
        z = transpose(layer, h)
        z.mul_(alpha)
    z.relu_()
    if exact_k:
        z.mul_(keep_mask(tuple(z.shape), rho, exact_k=True, generator=generator, dtype=z.dtype,
                         device=z.device))
    elif rho < 1.0:  # mul_ by the bool mask: several times faster than masked_fill_ on the CPU
        z.mul_(bernoulli_keep(tuple(z.shape), rho, generator=generator, device=z.device))
    return z


def _fit_step(layer, h: torch.Tensor, rho: float, *, exact_k: bool,
              generator: torch.Generator | None) -> tuple[torch.Tensor, float]:
    """A step whose α is the least-squares fit of `α W_torch x~ ≈ h` over the batch.

    ReLU is positively homogeneous, so `x~(α) = α x~(1)` and the best α is closed form.
    """
    z = step(layer, h, rho, alpha=1.0, exact_k=exact_k, generator=generator)
    y = _affine_in(layer, z, z.dtype) if layer.kind != "linear" else \
        z.flatten(1) @ layer.parameters()[0].detach().to(z.dtype).T
    y, hf = y.reshape(-1), h.reshape(-1).to(y.dtype)
    hy, yy = float(torch.dot(y, hf)), float(torch.dot(y, y))
    alpha = hy / yy if yy > 0 else 0.0
    return z.mul_(alpha), alpha


def sample(net, h: torch.Tensor, *, layer: int | str | None = None, rho: float | Sequence[float] = 0.5,
           until: int | str = 0, alpha: str | float | Sequence = "scaled", exact_k: bool = False,
           generator: torch.Generator | int | None = None,
           input_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Draw `x~ ~ p(x | h)` from the shadow model (eq. 1 for one layer, eq. 4 for several).

    Arguments are those of `sample_chain`; returns only the bottom level: a tensor
    `(B, *input shape of layer until)` (the net's input by default). `net` may be an
    `nn.Module` (loaded on the fly; `input_shape` when it cannot be inferred), a chain
    `ReluNet` or any `Graph`.

    On a graph that is not a chain (residual adds, concatenations) `layer` is a ReLU node
    (by name, e.g. `stage1.0.relu2`, or by its position among the ReLU nodes), the sample
    runs down to the input (`until` must stay 0), `rho` and `alpha` are single values and
    alpha="fit" fits one scale per ReLU node (see `reluscope.shadow._graph_shadow`). The
    theorems are proved for chains only: on a graph the samples are measurements.

    >>> import torch
    >>> from reluscope import nets
    >>> net = nets.load(nets.mlp([64, 32, 10]), input_shape=(1, 8, 8))
    >>> x = sample(net, torch.rand(5, 32), layer=0, rho=0.5, generator=0)
    >>> x.shape, bool((x >= 0).all())
    (torch.Size([5, 1, 8, 8]), True)
    """
    net = as_net(net, input_shape)
    if not net.is_chain:
        from ._graph_shadow import graph_sample, resolve_code_node

        if until not in (0, None, net.input.name):
            raise ConfigError("until= is for chains; on a graph the shadow model runs down to the input")
        node = resolve_code_node(net, h, layer, relu=False)
        return graph_sample(net, h, node, rho=rho, alpha=alpha, exact_k=exact_k, generator=generator)
    return sample_chain(net, h, layer=layer, rho=rho, until=until, alpha=alpha, exact_k=exact_k,
                        generator=generator)[-1]


def as_net(net, input_shape: tuple[int, ...] | None = None):
    """`net` as a loaded graph (a chain is a `ReluNet`): an `nn.Module` is loaded, a graph kept."""
    return as_graph(net, tuple(input_shape) if input_shape is not None else None)
