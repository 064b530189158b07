"""The shadow model of a graph (residual adds, concatenations, fan-outs): its transpose.

Caution. Arora, Liang & Ma prove their theorems for *chains* of random ReLU layers only.
On a graph with skips or concatenations nothing is proved: what this sampler gives on
residual or dense nets are measurements, not predictions of the theory.

The construction. A chain step from a code `h` is `x~ = r(α · W_torchᵀ h) ⊙ keep` (see
`_sampler`). On a graph the same thing is done node by node in reverse topological order
over the ancestors of the starting node:

- a linear node (affine or join) maps the signal at its output to its inputs with the
  exact adjoint of its linear part `node.apply(*xs, bias=False)`: a residual `add` copies
  (weighted adds scale), a fan-out sums what its consumers send back, a `cat` splits, a
  reshape reshapes, a `mean` spreads; an affine node's adjoint is also multiplied by its own
  α (the chain rule `layer_alpha`: "scaled", "paper" or a number), joins carry no α;
- at every ReLU node below the start, once its consumers have all sent their part back,
  the summed signal `s` becomes `r(s) ⊙ keep` and passes on to the ReLU's input unchanged
  (the ReLU's output is where the chain sampler's `x~` lives);
- the graph input is treated like a ReLU output (`r(s) ⊙ keep`), as the chain sampler
  does at its last step, so samples are nonnegative images.

On a chain this is exactly `sample` (`r(α_i W_iᵀ ·) ⊙ keep` per layer, the noise drawn in
the same order and shapes, so the same generator gives the same sample). Any other
activation (GELU, Tanh, MaxPool, LeakyReLU...) on the way raises `UnsupportedLayerError`.

`transpose_graph` is the bare linear part: the adjoints alone, ReLUs passed through,
no α, no ReLU and no noise, i.e. the vector–Jacobian product of the graph with every
activation replaced by the identity and every bias dropped.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, ShapeError, UnsupportedLayerError
from ._sampler import bernoulli_keep, generator_from, keep_mask, layer_alpha, transpose


def _node(graph, node):
    return graph.node(node) if isinstance(node, str) else graph.node(node.name)


def _check(graph, top, h: torch.Tensor) -> set[str]:
    if top.op == "input" or (top.op == "activation" and not top.is_relu):
        raise ConfigError(f"node '{top.name}' ({top.kind}) cannot start the shadow model; "
                          "start from a ReLU node (or an affine/join node)")
    names = graph.ancestors(top.name)
    for n in graph.nodes:
        if n.name in names and n.op == "activation" and not n.is_relu:
            raise UnsupportedLayerError(
                f"node '{n.name}' is a '{n.kind}' activation; the shadow model reverses ReLU "
                "graphs only (sample from a node below it, or replace the activation by ReLU)")
    if h.dim() < 2 or math.prod(h.shape[1:]) != math.prod(top.out_shape):
        raise ShapeError(f"codes have shape {tuple(h.shape)} but node '{top.name}' outputs "
                         f"(batch, {', '.join(map(str, top.out_shape))})")
    if not h.dtype.is_floating_point:
        raise ShapeError(f"codes must be floating point, got {h.dtype}")
    return names


def _join_adjoint(node, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # The join is linear in its inputs, so its vector-Jacobian product at zero is its adjoint.
    with torch.enable_grad():
        xs = [torch.zeros(g.shape[0], *s, dtype=g.dtype, device=g.device, requires_grad=True)
              for s in node.in_shapes]
        y = node.apply(*xs, bias=False)
        return torch.autograd.grad(y, xs, grad_outputs=g.reshape(y.shape), allow_unused=True)


def _backward(graph, h: torch.Tensor, top, *, site, scale) -> torch.Tensor:
    """Run the transpose from `top` down to the input; `site(s)` transforms the summed
    signal at each ReLU output below `top` and at the input; `scale(node)` is an affine
    node's α."""
    names = _check(graph, top, h)
    batch = h.shape[0]
    cot: dict[str, torch.Tensor] = {top.name: h.reshape(batch, *top.out_shape)}
    order = [n for n in graph.nodes if n.name in names]
    for n in reversed(order):
        g = cot.pop(n.name, None)
        if g is None:  # no path back from `top` (cannot happen for an ancestor; be safe)
            g = torch.zeros(batch, *n.out_shape, dtype=h.dtype, device=h.device)
        if n is not top and (n.is_relu or n.op == "input"):
            g = site(g)
        if n.op == "input":
            return g.reshape(batch, *graph.input_shape)
        if n.op == "activation":  # a ReLU: passes the signal to its input
            parts: tuple = (g,)
        elif n.op == "affine":
            part = transpose(n.layer, g).reshape(batch, *n.in_shapes[0])
            a = scale(n)
            parts = (part if a == 1.0 else part.mul_(a),)
        else:
            parts = _join_adjoint(n, g)
        for k, p in zip(n.inputs, parts):
            if p is None:
                continue
            cot[k] = p if k not in cot else cot[k] + p
    raise ConfigError(f"node '{top.name}' does not depend on the graph input")  # pragma: no cover


@torch.no_grad()
def transpose_graph(graph, g: torch.Tensor, node) -> torch.Tensor:
    """The adjoint of the graph's linear part from node `node`'s output to the input.

    Every activation on the way is taken as the identity (a ReLU passes the signal on; any
    other activation raises `UnsupportedLayerError`) and biases are dropped: this is the
    vector–Jacobian product `Jᵀ g` of that linear map, with no α, no ReLU and no noise.

    Arguments:
        graph: a `Graph` from `reluscope.nets.load` (a chain `ReluNet` too).
        g: a batch `(B, *out_shape)` of node `node`.
        node: a node name (or `Node`): a ReLU, affine or join node.

    Returns:
        A tensor `(B, *graph.input_shape)`.
    """
    top = _node(graph, node)
    return _backward(graph, g, top, site=lambda s: s, scale=lambda n: 1.0)


@torch.no_grad()
def sample_graph(graph, h: torch.Tensor, *, node, rho: float = 0.5, alpha: str | float = "scaled",
                 exact_k: bool = False, generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Draw `x~ ~ p(x | h)` from the shadow model of a ReLU graph (its transpose).

    Arguments:
        graph: a `Graph` from `reluscope.nets.load` (a chain `ReluNet` too).
        h: codes `(B, *out_shape)` of node `node` (or `(B, numel)`).
        node: the node `h` is the output of (name or `Node`), normally a ReLU node.
        rho: keep probability of the noise at every ReLU output and at the input.
        alpha: the α of each affine node: "scaled" (default), "paper" or a positive number
            (see `layer_alpha`); joins (adds, cats, reshapes) carry none. "fit": one α per
            ReLU node, fitted by least squares (see `reluscope.shadow._graph_shadow`).
        exact_k: keep exactly `round(rho · n)` coordinates per sample and site.
        generator: a `torch.Generator` or an int seed (same seed, same sample).

    Returns:
        `(B, *graph.input_shape)`, nonnegative. On a chain it equals `sample` with the same
        arguments and generator. On non-chains the theory does not apply: measure, don't predict.

    >>> import torch
    >>> from reluscope import nets
    >>> net = nets.load(nets.mlp([64, 32, 10]), input_shape=(1, 8, 8))
    >>> x = sample_graph(net, torch.rand(5, 32), node="2", rho=0.5, generator=0)
    >>> x.shape, bool((x >= 0).all())
    (torch.Size([5, 1, 8, 8]), True)
    """
    if not isinstance(rho, (int, float)) or isinstance(rho, bool) or not 0 < rho <= 1:
        raise ConfigError(f"rho must be a number in (0, 1], got {rho!r}")
    if alpha == "fit":
        from ._graph_shadow import graph_sample

        return graph_sample(graph, h, _node(graph, node), rho=rho, alpha="fit", exact_k=exact_k,
                            generator=generator)
    rho = float(rho)
    top = _node(graph, node)
    gen = generator_from(generator, h.device)
    alphas: dict[str, float] = {}

    def scale(n) -> float:
        if n.name not in alphas:
            alphas[n.name] = layer_alpha(n.layer, rho, alpha)
        return alphas[n.name]

    def site(s: torch.Tensor) -> torch.Tensor:
        s = s.relu()
        if exact_k:
            return s.mul_(keep_mask(tuple(s.shape), rho, exact_k=True, generator=gen, dtype=s.dtype,
                                    device=s.device))
        if rho < 1.0:
            s.mul_(bernoulli_keep(tuple(s.shape), rho, generator=gen, device=s.device))
        return s

    return _backward(graph, h, top, site=site, scale=scale)
