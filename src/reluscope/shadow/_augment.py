"""SHADOW augmentation: add shadow-model samples of each training batch, with its labels.

For a batch `(x, y)`: `h = f_layer(x)` with the *current* weights, `x~ ~ p(x | h)` from
the shadow model, label `y`; the returned batch is the real one followed by
`round(ratio · B)` synthetic samples. Everything synthetic is computed without autograd,
so no gradient flows into the sampler.

The defaults are the choices the theory supports (Arora, Liang, Ma give no protocol): codes
from the *first* hidden layer (one shadow step, Theorem 1's setting, where the code layer
is narrower than the input on MNIST), ρ = 0.75 (t = ρn well above the number of active
units k), a quarter of a synthetic sample per real one, each sample rescaled to the norm of
the real image it came from and clipped to the batch's value range. Every other choice is
an option: `layer="top"` or `"output"` (codes from the net's label distribution), any ρ and
ratio, the model's own scale, a separate weight of the synthetic loss, a warm-up.

Example, in a plain training loop:

    aug = ShadowAugment(model, seed=0)
    for x, y in loader:
        x, y = aug(x, y)
        loss = F.cross_entropy(model(x), y)
        ...

With `weight=w` the call returns `(x, y, sample_weights)` and the loss to minimise is
`(sample_weights * cross_entropy(model(x), y, reduction="none")).sum()`: the real batch's
mean loss plus w times the synthetic batch's mean loss (`reluscope.train.train` does this),
so the real data keeps its full weight whatever the ratio.

`conditions()` says whether the theory's conditions held on the codes actually used: the
code layer narrower than the layer it generates, and the nonzeros growing from the code down
(k < t < k² for one layer, Theorem 1; k₂ < k₁ < k₀ < k₂² for two, Theorem 3.1).

On a graph that is not a chain (a ResNet) the codes come from a ReLU node, named by node name
(`layer="stage3.2.relu2"`, or an int counting the ReLU nodes; default the first one), and
`x~` is drawn through the graph's transpose (`sample_graph`; "fit" fits one scale per ReLU
node). The shadow model's theory covers chains only; on a graph SHADOW is a heuristic.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, UnsupportedLayerError
from ._sampler import as_net, generator_from, sample_chain

_KEYS = ("layer", "rho", "ratio", "alpha", "refit_every", "scale", "weight", "warmup")
_LAYER_WORDS = ("first", "top", "output")
SCALES = ("data", "model")


class ShadowAugment:
    """Callable `(x, y) -> (x_aug, y_aug)` adding shadow samples of the batch.

    Arguments:
        net_or_model: an `nn.Module` (read live, so it follows training), a ReluNet or a Graph.
        layer: where the codes h come from: "first" (default: the first ReLU layer), "top" (the
            last ReLU layer), "output" (the softmax of the net's output: "its label h", reversed
            through every layer; chains only), or a layer index or name; on a graph, a ReLU node
            (name, or position among the ReLU nodes).
        rho: keep probability of the shadow model's dropout noise.
        ratio: synthetic samples per real sample (0.25: a quarter of the batch; 2: twice).
        alpha: scale rule of `sample` (default "fit": see `reconstruct`).
        scale: "data" (default) rescales each synthetic sample to the norm of the real sample it
            came from; "model" keeps the shadow model's own scale (alpha's).
        clamp: clip synthetic inputs to a range: "data" (default: the real batch's min and max),
            a pair `(low, high)`, or None.
        weight: None (default): the synthetic samples join the batch and its mean loss; a number
            w: return per-sample loss weights too (real mean loss + w × synthetic mean loss).
        warmup: batches without synthetic samples before SHADOW starts (a net that cannot yet
            classify generates noise).
        refit_every: with alpha="fit", refit the per-layer α on every `refit_every`-th batch
            and reuse the fitted values in between (α drifts slowly; this saves one matrix
            product per layer per batch). 1 refits on every batch.
        seed: seed of the noise (same seed, same synthetic batches).
        input_shape: for an nn.Module whose input shape cannot be inferred.

    >>> import torch
    >>> from reluscope import nets
    >>> aug = ShadowAugment(nets.mlp([64, 32, 10]), input_shape=(64,))
    >>> x, y = aug(torch.rand(8, 64), torch.arange(8))
    >>> x.shape, y.tolist()
    (torch.Size([10, 64]), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1])
    """

    def __init__(self, net_or_model, layer: int | str | None = None, rho: float = 0.75, ratio: float = 0.25,
                 alpha: str | float = "fit", clamp: tuple[float, float] | str | None = "data", seed: int = 0,
                 input_shape: tuple[int, ...] | None = None, refit_every: int = 20, scale: str = "data",
                 weight: float | None = None, warmup: int = 0):
        self.net = as_net(net_or_model, input_shape)
        if not 0 < rho <= 1:
            raise ConfigError(f"SHADOW rho must be in (0, 1], got {rho}")
        if not ratio >= 0 or not math.isfinite(ratio):
            raise ConfigError(f"SHADOW ratio must be a nonnegative number, got {ratio}")
        if scale not in SCALES:
            raise ConfigError(f"SHADOW scale must be one of {', '.join(SCALES)}, got {scale!r}")
        if weight is not None and not (weight >= 0 and math.isfinite(weight)):
            raise ConfigError(f"SHADOW weight must be a nonnegative number, got {weight}")
        if not (clamp is None or clamp == "data" or (isinstance(clamp, (tuple, list)) and len(clamp) == 2)):
            raise ConfigError(f"SHADOW clamp must be 'data', a pair (low, high) or None, got {clamp!r}")
        if int(refit_every) < 1:
            raise ConfigError(f"refit_every must be >= 1, got {refit_every}")
        if int(warmup) < 0:
            raise ConfigError(f"SHADOW warmup must be >= 0 batches, got {warmup}")
        self.output_codes = layer == "output"
        self.layer = self._resolve(layer)
        self.rho, self.ratio, self.alpha, self.clamp, self.seed = float(rho), float(ratio), alpha, clamp, seed
        self.scale, self.weight, self.warmup = scale, None if weight is None else float(weight), int(warmup)
        self.refit_every = int(refit_every)
        self._gen: torch.Generator | None = None
        self._fitted: list[float] | dict[str, float] | None = None
        self._calls = 0  # synthesized batches
        self._batches = 0  # batches seen by __call__ (for the warm-up)
        self._nonzeros: list[float] | None = None  # running sums of mean nonzeros per level

    def _resolve(self, layer):
        """The code layer (chain: index; graph: node name) for `layer` as the user gave it."""
        net = self.net
        if not net.is_chain:
            from ._graph_shadow import resolve_node, reversible

            if not net.relu_nodes():
                raise ConfigError("the model has no ReLU node to take SHADOW codes from")
            if layer == "output":
                raise ConfigError("SHADOW codes from the output are for chains; on a graph name a ReLU node")
            key = {None: 0, "first": 0, "top": -1}.get(layer, layer)
            try:
                name = resolve_node(net, key).name
            except UnsupportedLayerError as exc:
                raise ConfigError(f"SHADOW layer {layer!r}: {exc}") from None
            if not reversible(net, net.node(name)):
                raise ConfigError(f"SHADOW layer '{name}': a non-ReLU activation lies below it; "
                                  "the shadow model reverses ReLU graphs only (pick a lower ReLU node)")
            return name
        relus = net.relu_layers()
        if layer in (None, "first", "top") and not relus:
            raise ConfigError("the model has no ReLU layer to take SHADOW codes from")
        key = {None: relus[:1], "first": relus[:1], "top": relus[-1:],
               "output": [len(net.layers) - 1]}.get(layer) if isinstance(layer, (str, type(None))) else None
        try:
            return key[0] if key else net.index(layer)
        except (IndexError, KeyError) as exc:
            words = ", ".join(_LAYER_WORDS)
            raise ConfigError(f"SHADOW layer {layer!r}: {exc.args[0]} (or one of {words})") from None

    @classmethod
    def from_spec(cls, net_or_model, spec: str, seed: int = 0, **kwargs) -> ShadowAugment:
        """Build from a spec string such as `layer=top,rho=0.5,ratio=1` (the `--shadow` option).

        >>> from reluscope import nets
        >>> ShadowAugment.from_spec(nets.mlp([64, 32, 10]), "rho=0.3,ratio=2", input_shape=(64,))
        ShadowAugment(layer=0, rho=0.3, ratio=2.0, alpha='fit', scale='data')
        """
        opts: dict = {}
        for part in filter(None, (p.strip() for p in str(spec).split(","))):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or key not in _KEYS:
                raise ConfigError(f"bad SHADOW option '{part}'; write e.g. layer=first,rho=0.75,ratio=0.25 "
                                  f"(keys: {', '.join(_KEYS)})")
            value = value.strip()
            try:
                if key == "layer":
                    opts[key] = int(value) if value.lstrip("-").isdigit() else value
                elif key in ("refit_every", "warmup"):
                    opts[key] = int(value)
                elif key == "alpha":
                    opts[key] = value if value in ("fit", "scaled", "paper") else float(value)
                elif key == "scale":
                    opts[key] = value
                else:
                    opts[key] = float(value)
            except ValueError:
                raise ConfigError(f"SHADOW option '{part}' needs a number") from None
        return cls(net_or_model, seed=seed, **opts, **kwargs)

    def __repr__(self) -> str:
        return (f"ShadowAugment(layer={self.layer!r}, rho={self.rho}, ratio={self.ratio}, "
                f"alpha={self.alpha!r}, scale={self.scale!r})")

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        if self.net.is_chain:
            h = self.net.forward(x.to(self.net.dtype), upto=self.layer)
            return torch.softmax(h.flatten(1), dim=1) if self.output_codes else h
        return self.net.run(x.to(self.net.dtype), keep=[self.layer])[self.layer]

    def synthesize(self, x: torch.Tensor) -> torch.Tensor:
        """Shadow samples of `x` (same count), detached from the parameters."""
        if self._gen is None or self._gen.device != x.device:
            self._gen = generator_from(self.seed, x.device)
        # The ReluNet view runs the affine maps and ReLUs only (no dropout, batch norm folded
        # with running statistics), so h is the deterministic code whatever the model's mode.
        with torch.no_grad():
            reuse = self.alpha == "fit" and self._fitted is not None and self._calls % self.refit_every
            h = self._codes(x)
            if self.net.is_chain:
                record: list[float] = []
                levels = sample_chain(self.net, h, layer=self.layer, rho=self.rho,
                                      alpha=self._fitted if reuse else self.alpha, generator=self._gen,
                                      record=record)
                self._count_nonzeros(levels)
                xs = levels[-1]
            else:
                from ._graph_shadow import graph_sample

                record = {}
                xs = graph_sample(self.net, h, self.layer, rho=self.rho, alpha=self.alpha,
                                  generator=self._gen, fitted=self._fitted if reuse else None, record=record)
            if self.alpha == "fit" and not reuse:
                self._fitted = record
            self._calls += 1
            xs = xs.reshape(x.shape).to(x.dtype)
            if self.scale == "data":  # each sample at its real image's norm (a zero sample stays zero)
                norms = xs.flatten(1).norm(dim=1)
                target = x.flatten(1).norm(dim=1)
                factor = torch.where(norms > 0, target / norms.clamp_min(1e-30), torch.zeros_like(norms))
                xs.mul_(factor.view(-1, *([1] * (xs.dim() - 1))))
            if self.clamp == "data":
                xs.clamp_(float(x.min()), float(x.max()))
            elif self.clamp is not None:
                xs.clamp_(*self.clamp)
        return xs

    def _count_nonzeros(self, levels: list[torch.Tensor]) -> None:
        counts = [float((lvl.flatten(1) != 0).sum(1).double().mean()) for lvl in levels]
        self._nonzeros = counts if self._nonzeros is None else [a + b for a, b in zip(self._nonzeros, counts)]

    def conditions(self) -> dict | None:
        """The theory's conditions on the samples drawn so far (chains; None before the first
        sample or on a graph): mean nonzeros per level from the code down to the input, widths,
        and whether each condition held on those means.

        - `narrower`: the code layer is narrower than the input it generates (the theory's m < n);
        - `increasing`: nonzeros grow at every step down (k < t; k₂ < k₁ < k₀);
        - `below_square`: the input's nonzeros are below the square of the code's (t < k²; k₀ < k₂²).
        """
        if self._nonzeros is None:
            return None
        k = [v / self._calls for v in self._nonzeros]
        code_width = math.prod(self.net.layers[self.layer].out_shape)
        input_width = math.prod(self.net.input_shape)
        out = dict(depth=len(k) - 1, nonzeros=k, code_width=code_width, input_width=input_width,
                   narrower=code_width < input_width, increasing=all(a < b for a, b in zip(k, k[1:])),
                   below_square=k[-1] < k[0] ** 2)
        out["holds"] = out["narrower"] and out["increasing"] and out["below_square"]
        return out

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        self._batches += 1
        count = int(round(self.ratio * len(x))) if self._batches > self.warmup else 0
        if count == 0 or len(x) == 0:
            return (x, y) if self.weight is None else (x, y, torch.full((len(x),), 1 / max(len(x), 1),
                                                                         device=x.device))
        if count != len(x):  # ratio 1 needs no gather: one synthetic sample per real one
            idx = torch.arange(count, device=x.device) % len(x)
            x_src, y_src = x[idx], y[idx]
        else:
            x_src, y_src = x, y
        xa, ya = torch.cat([x, self.synthesize(x_src)]), torch.cat([y, y_src])
        if self.weight is None:
            return xa, ya
        w = torch.cat([torch.full((len(x),), 1 / len(x), device=x.device),
                       torch.full((count,), self.weight / count, device=x.device)])
        return xa, ya, w
