"""SHADOW augmentation: add shadow-model samples of each training batch, with its labels.

For a batch `(x, y)`: `h = f_layer(x)` with the *current* weights, `x~ ~ p(x | h)` from
the shadow model, label `y`; the returned batch is the real one followed by
`round(ratio · B)` synthetic samples. Everything synthetic is computed without autograd,
so no gradient flows into the sampler.

Example, in a plain training loop:

    aug = ShadowAugment(model, layer=-2, rho=0.5, ratio=1.0, seed=0)
    for x, y in loader:
        x, y = aug(x, y)
        loss = F.cross_entropy(model(x), y)
        ...

On a graph that is not a chain (a ResNet) the codes come from a ReLU node, named by node name
(`layer="stage3.2.relu2"`, or an int counting the ReLU nodes; default the last one), and
`x~` is drawn through the graph's transpose (`sample_graph`; "fit" fits one scale per ReLU
node). The shadow model's theory covers chains only; on a graph SHADOW is a heuristic.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, UnsupportedLayerError
from ._sampler import as_net, generator_from, sample_chain

_KEYS = ("layer", "rho", "ratio", "alpha", "refit_every")


class ShadowAugment:
    """Callable `(x, y) -> (x_aug, y_aug)` adding shadow samples of the batch.

    Arguments:
        net_or_model: an `nn.Module` (read live, so it follows training), a ReluNet or a Graph.
        layer: the layer the codes h come from (index or name; default: the top ReLU layer);
            on a graph, a ReLU node (name, or position among the ReLU nodes; default the last).
        rho: keep probability of the shadow model's dropout noise.
        ratio: synthetic samples per real sample (0.5: half the batch; 2: twice).
        alpha: scale rule of `sample` (default "fit": see `reconstruct`).
        refit_every: with alpha="fit", refit the per-layer α on every `refit_every`-th batch
            and reuse the fitted values in between (α drifts slowly; this saves one matrix
            product per layer per batch). 1 refits on every batch.
        clamp: clip synthetic inputs to this range (e.g. the data's value range), or None.
        seed: seed of the noise (same seed, same synthetic batches).
        input_shape: for an nn.Module whose input shape cannot be inferred.

    >>> import torch
    >>> from reluscope import nets
    >>> aug = ShadowAugment(nets.mlp([64, 32, 10]), rho=0.5, ratio=1, input_shape=(64,))
    >>> x, y = aug(torch.rand(4, 64), torch.arange(4))
    >>> x.shape, y.tolist()
    (torch.Size([8, 64]), [0, 1, 2, 3, 0, 1, 2, 3])
    """

    def __init__(self, net_or_model, layer: int | str | None = None, rho: float = 0.5, ratio: float = 1.0,
                 alpha: str | float = "fit", clamp: tuple[float, float] | None = None, seed: int = 0,
                 input_shape: tuple[int, ...] | None = None, refit_every: int = 20):
        self.net = as_net(net_or_model, input_shape)
        if not 0 < rho <= 1:
            raise ConfigError(f"SHADOW rho must be in (0, 1], got {rho}")
        if not ratio >= 0 or not math.isfinite(ratio):
            raise ConfigError(f"SHADOW ratio must be a nonnegative number, got {ratio}")
        if not self.net.is_chain:
            from ._graph_shadow import resolve_node, reversible

            if not self.net.relu_nodes():
                raise ConfigError("the model has no ReLU node to take SHADOW codes from")
            try:
                self.layer = resolve_node(self.net, -1 if layer is None else layer).name
            except UnsupportedLayerError as exc:
                raise ConfigError(f"SHADOW layer {layer!r}: {exc}") from None
            if not reversible(self.net, self.net.node(self.layer)):
                raise ConfigError(f"SHADOW layer '{self.layer}': a non-ReLU activation lies below it; "
                                  "the shadow model reverses ReLU graphs only (pick a lower ReLU node)")
        else:
            if layer is None:
                relus = self.net.relu_layers()
                if not relus:
                    raise ConfigError("the model has no ReLU layer to take SHADOW codes from")
                layer = relus[-1]
            try:
                self.layer = self.net.index(layer)
            except (IndexError, KeyError) as exc:
                raise ConfigError(f"SHADOW layer {layer!r}: {exc.args[0]}") from None
        self.rho, self.ratio, self.alpha, self.clamp, self.seed = float(rho), float(ratio), alpha, clamp, seed
        if int(refit_every) < 1:
            raise ConfigError(f"refit_every must be >= 1, got {refit_every}")
        self.refit_every = int(refit_every)
        self._gen: torch.Generator | None = None
        self._fitted: list[float] | dict[str, float] | None = None
        self._calls = 0

    @classmethod
    def from_spec(cls, net_or_model, spec: str, seed: int = 0, **kwargs) -> ShadowAugment:
        """Build from a spec string such as `layer=-2,rho=0.5,ratio=1` (the `--shadow` option).

        >>> from reluscope import nets
        >>> ShadowAugment.from_spec(nets.mlp([64, 32, 10]), "rho=0.3,ratio=2", input_shape=(64,))
        ShadowAugment(layer=0, rho=0.3, ratio=2.0, alpha='fit')
        """
        opts: dict = {}
        for part in filter(None, (p.strip() for p in str(spec).split(","))):
            key, eq, value = part.partition("=")
            key = key.strip()
            if not eq or key not in _KEYS:
                raise ConfigError(f"bad SHADOW option '{part}'; write e.g. layer=-2,rho=0.5,ratio=1 "
                                  f"(keys: {', '.join(_KEYS)})")
            value = value.strip()
            try:
                if key == "layer":
                    opts[key] = int(value) if value.lstrip("-").isdigit() else value
                elif key == "refit_every":
                    opts[key] = int(value)
                elif key == "alpha":
                    opts[key] = value if value in ("fit", "scaled", "paper") else float(value)
                else:
                    opts[key] = float(value)
            except ValueError:
                raise ConfigError(f"SHADOW option '{part}' needs a number") from None
        return cls(net_or_model, seed=seed, **opts, **kwargs)

    def __repr__(self) -> str:
        return (f"ShadowAugment(layer={self.layer!r}, rho={self.rho}, ratio={self.ratio}, "
                f"alpha={self.alpha!r})")

    def synthesize(self, x: torch.Tensor) -> torch.Tensor:
        """Shadow samples of `x` (same count), detached from the parameters."""
        if self._gen is None or self._gen.device != x.device:
            self._gen = generator_from(self.seed, x.device)
        # The ReluNet view runs the affine maps and ReLUs only (no dropout, batch norm folded
        # with running statistics), so h is the deterministic code whatever the model's mode.
        with torch.no_grad():
            reuse = self.alpha == "fit" and self._fitted is not None and self._calls % self.refit_every
            if self.net.is_chain:
                h = self.net.forward(x.to(self.net.dtype), upto=self.layer)
                record: list[float] = []
                xs = sample_chain(self.net, h, layer=self.layer, rho=self.rho,
                                  alpha=self._fitted if reuse else self.alpha, generator=self._gen,
                                  record=record)[-1]
            else:
                from ._graph_shadow import graph_sample

                h = self.net.run(x.to(self.net.dtype), keep=[self.layer])[self.layer]
                record = {}
                xs = graph_sample(self.net, h, self.layer, rho=self.rho, alpha=self.alpha,
                                  generator=self._gen, fitted=self._fitted if reuse else None, record=record)
            if self.alpha == "fit" and not reuse:
                self._fitted = record
            self._calls += 1
        xs = xs.reshape(x.shape).to(x.dtype)
        if self.clamp is not None:
            xs = xs.clamp_(*self.clamp)
        return xs

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = int(round(self.ratio * len(x)))
        if count == 0 or len(x) == 0:
            return x, y
        if count != len(x):  # ratio 1 needs no gather: one synthetic sample per real one
            idx = torch.arange(count, device=x.device) % len(x)
            x_src, y_src = x[idx], y[idx]
        else:
            x_src, y_src = x, y
        return torch.cat([x, self.synthesize(x_src)]), torch.cat([y, y_src])
