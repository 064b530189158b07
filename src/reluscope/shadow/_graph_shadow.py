"""The shadow analyses on graphs: ReLU nodes as code sites, one-block steps, α by fit.

Caution. Arora, Liang & Ma prove their theorems for *chains* of ReLU layers. On a graph
with residual adds, concatenations or fan-outs nothing is proved: what `sample`,
`reversibility`, `reconstruct` and `ShadowAugment` give there are measurements, not
predictions of the theory.

Terms.
- A *code site* is a ReLU node (its output is a code `h`) or the graph input. Sites are
  addressed by node name (`stage1.0.relu2`, `relu#3`) or by their position among the graph's
  ReLU nodes in topological order (an int, negative allowed).
- The *block* of a ReLU node R is its linear part back to the nearest sites: walk back from
  R's input through affine and join nodes and stop at ReLU nodes and at the input, which form
  the block's *frontier*. R's pre-activation is `L_R(frontier values) + b_R`. On a chain a
  block is one layer and its frontier the layer's input; in a residual block it is the two
  branches (the convolution path and the identity/shortcut path) and both their sources.
- One *shadow step* from R is the sampler of `sample_graph` run over R's block only: each
  frontier site receives the transpose of the block applied to `h` and becomes `r(·) ⊙ keep`.
  `reversibility` measures `r(L_R x~ + offset)` against `h` for that step.

α = "fit" on a graph. The chain fit picks one α per layer: the least-squares scale making
the layer map its sample back onto the code above. On a graph the same is done per ReLU node,
i.e. per block: from a node B with final code `h_B`, one shadow step over B's block (every
affine map scaled by the "scaled" rule, so that the paths of a residual block are on a
common scale) proposes `p_f = r(·) ⊙ keep_f` at each frontier site f, and one α_B for the
whole block is the least-squares scale with `L_B(α_B p) ≈ h_B`. Nodes are taken top down;
a site read by several blocks (a fan-out: the identity source of a residual block feeds the
add and the next convolution) takes the sum of what they propose, as the transpose sums what
a fan-out's consumers send back, and then proposes to the sites below it. (A residual
block's fit splits h_B between its two paths; the sum restores the identity stream's scale,
so the sample keeps its scale through a deep ResNet instead of halving at every block.) On
a chain every site has one proposal and this is exactly the chain fit (the same samples).
Each site's keep mask is drawn once, when the first block above it asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, ShapeError, UnsupportedLayerError
from ._graph_sampler import _join_adjoint, sample_graph
from ._sampler import bernoulli_keep, generator_from, keep_mask, layer_alpha, transpose


# -- addressing -----------------------------------------------------------------------------
def site_index(graph, node) -> int:
    """Position of a ReLU node among `graph.relu_nodes()`."""
    return [n.name for n in graph.relu_nodes()].index(node.name)


def resolve_node(graph, key, *, relu: bool = True):
    """The node addressed by `key`: a node name, or an int (or digit string that is not a node
    name) counting the ReLU nodes in topological order. `relu`: it must be a ReLU node."""
    relus = graph.relu_nodes()
    if isinstance(key, str) and (key in graph.aliases or any(n.name == key for n in graph.nodes)):
        node = graph.node(key)
    elif isinstance(key, int) or (isinstance(key, str) and key.strip().lstrip("-").isdigit()):
        k = int(key)
        if not -len(relus) <= k < len(relus):
            raise ConfigError(f"ReLU node index {k} out of range: the graph has {len(relus)} ReLU nodes "
                              f"({', '.join(n.name for n in relus)})")
        node = relus[k]
    elif isinstance(key, str):
        node = graph.node(key)  # UnknownNodeError (a ConfigError) listing the nodes
    else:
        raise ConfigError(f"a node is addressed by name or by ReLU index, got {key!r}")
    if relu and not node.is_relu:
        raise UnsupportedLayerError(
            f"node '{node.name}' is a '{node.kind}' node; the shadow model reads codes at ReLU nodes "
            f"({', '.join(n.name for n in relus) or 'none in this graph'})")
    return node


def resolve_code_node(graph, h: torch.Tensor, key, *, relu: bool = True):
    """The node whose output `h` is: given by `key`, or the unique ReLU node of h's shape."""
    if key is not None:
        return resolve_node(graph, key, relu=relu)
    shape = tuple(h.shape[1:])
    found = [n for n in graph.relu_nodes() if n.out_shape == shape]
    if len(found) != 1:
        raise ShapeError(f"cannot tell which ReLU node a code of shape {shape} comes from "
                         f"({len(found)} nodes match); pass layer= with a node name")
    return found[0]


def relu_sites(graph, layers=None) -> list:
    """The ReLU nodes named in `layers` (names or ReLU indices), default all; an error if none."""
    nodes = graph.relu_nodes() if layers is None else [resolve_node(graph, k) for k in layers]
    if not nodes:
        raise ConfigError("the graph has no ReLU node to reverse")
    return nodes


def reversible(graph, node) -> bool:
    """True when every activation below `node` is a ReLU (the shadow model can reach the input)."""
    names = graph.ancestors(node.name)
    return all(n.is_relu for n in graph.nodes if n.name in names and n.op == "activation"
               and n is not node)


# -- blocks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """The linear part between a node and the sites below it.

    `nodes`: affine and join nodes in topological order; `frontier`: the sites (ReLU nodes and
    the input) it reads, in topological order; `out`: the node whose output is the top's
    pre-activation (the ReLU's input, or the top itself for an affine/join top).
    """

    top: object
    nodes: tuple
    frontier: tuple
    out: str


def block_of(graph, top) -> Block:
    """The block of `top` (a ReLU node, or an affine/join node taken as its own pre-activation).

    >>> from reluscope import nets
    >>> net = nets.load(nets.build("resnet20", (1, 8, 8), 10), input_shape=(1, 8, 8))
    >>> blk = block_of(net, net.node("stage1.0.relu2"))
    >>> [n.name for n in blk.nodes], [n.name for n in blk.frontier]
    (['stage1.0.conv2', 'stage1.0.add'], ['stem.relu', 'stage1.0.relu1'])
    """
    if top.op == "input" or (top.op == "activation" and not top.is_relu):
        raise ConfigError(f"node '{top.name}' ({top.kind}) has no block; use a ReLU node")
    start = [top.name] if top.is_linear else list(top.inputs)
    linear, frontier, todo = set(), set(), list(start)
    while todo:
        n = graph.node(todo.pop())
        if n.name in linear or n.name in frontier:
            continue
        if n.is_relu or n.op == "input":
            frontier.add(n.name)
        elif n.is_linear:
            linear.add(n.name)
            todo.extend(n.inputs)
        else:
            raise UnsupportedLayerError(
                f"node '{n.name}' is a '{n.kind}' activation; the shadow model reverses ReLU graphs "
                "only (use a node below it, or replace the activation by ReLU)")
    return Block(top, tuple(n for n in graph.nodes if n.name in linear),
                 tuple(n for n in graph.nodes if n.name in frontier), start[0])


def block_forward(graph, blk: Block, values: dict, *, bias: bool = False, batch: int | None = None,
                  like: torch.Tensor | None = None) -> torch.Tensor:
    """The block's linear part (`bias=False`) or affine map applied to frontier `values`
    (missing sites are zero), in the model's dtype; returns the top's pre-activation."""
    ref = next(iter(values.values())) if values else like
    batch = batch if batch is not None else ref.shape[0]
    device, dtype = graph.device, graph.dtype
    env = {}
    for f in blk.frontier:
        v = values.get(f.name)
        env[f.name] = (torch.zeros(batch, *f.out_shape, dtype=dtype, device=device) if v is None
                       else v.reshape(batch, *f.out_shape).to(device=device, dtype=dtype))
    for n in blk.nodes:
        env[n.name] = n.apply(*(env[k] for k in n.inputs), bias=bias)
    return env[blk.out]


# -- the backward walk ----------------------------------------------------------------------------
def _walk(graph, h: torch.Tensor, top, order: list, *, sites: set, stop: set, transform, scale) -> dict:
    """Run the transpose from `top` over `order` (nodes in topological order); at each site
    (below `top`) the summed signal `s` becomes `transform(node, s)`, which is recorded and,
    unless the site is in `stop`, passed on to its input. Returns the recorded site values."""
    batch = h.shape[0]
    cot = {top.name: h.reshape(batch, *top.out_shape)}
    values: dict[str, torch.Tensor] = {}
    for n in reversed(order):
        g = cot.pop(n.name, None)
        if g is None:
            g = torch.zeros(batch, *n.out_shape, dtype=h.dtype, device=h.device)
        if n is not top and n.name in sites:
            g = transform(n, g)
            values[n.name] = g
            if n.name in stop:
                continue
        if n.op == "input":
            continue
        if n.op == "activation":
            parts: tuple = (g,)
        elif n.op == "affine":
            part = transpose(n.layer, g).reshape(batch, *n.in_shapes[0])
            a = scale(n)
            parts = (part if a == 1.0 else part.mul_(a),)
        else:
            parts = _join_adjoint(n, g)
        for k, p in zip(n.inputs, parts):
            if p is not None:
                cot[k] = p if k not in cot else cot[k] + p
    return values


def _check_codes(top, h: torch.Tensor) -> None:
    import math

    if h.dim() < 2 or math.prod(h.shape[1:]) != math.prod(top.out_shape):
        raise ShapeError(f"codes have shape {tuple(h.shape)} but node '{top.name}' outputs "
                         f"(batch, {', '.join(map(str, top.out_shape))})")
    if not h.dtype.is_floating_point:
        raise ShapeError(f"codes must be floating point, got {h.dtype}")


def _check_args(rho, alpha) -> float:
    if not isinstance(rho, (int, float)) or isinstance(rho, bool) or not 0 < rho <= 1:
        raise ConfigError(f"rho must be a number in (0, 1] on a graph (one value for every ReLU node), "
                          f"got {rho!r}")
    if isinstance(alpha, (list, tuple, dict)):
        raise ConfigError("one alpha per layer is for chains; on a graph give one rule "
                          "('fit', 'scaled', 'paper') or one number")
    return float(rho)


@torch.no_grad()
def shadow_sites(graph, h: torch.Tensor, top, *, rho: float = 0.5, alpha: str | float = "scaled",
                 exact_k: bool = False, generator: torch.Generator | int | None = None,
                 one_block: bool = False, fitted: dict | None = None,
                 record: dict | None = None) -> dict[str, torch.Tensor]:
    """The shadow model from node `top` with codes `h`: the samples at every site below it
    (`one_block`: at the frontier of top's block only, one shadow step), keyed by node name.

    `alpha`: "fit" (one α per ReLU node, see the module), "scaled", "paper" or a number (per
    affine node). `fitted`: α per ReLU node from an earlier "fit" to reuse instead of fitting;
    `record`: if a dict, the fitted α of each ReLU node (and of `top`) is stored in it.
    Without "fit" and over the whole graph the input's sample equals `sample_graph`'s.
    """
    rho = _check_args(rho, alpha)
    _check_codes(top, h)
    gen = generator_from(generator, h.device)
    fit = alpha == "fit" or fitted is not None
    base = "scaled" if fit else alpha
    alphas: dict[str, float] = {}

    def scale(n) -> float:
        if n.name not in alphas:
            alphas[n.name] = layer_alpha(n.layer, rho, base)
        return alphas[n.name]

    masks: dict[str, torch.Tensor | None] = {}

    def keep(n, s: torch.Tensor) -> torch.Tensor:
        s = s.relu()
        if n.name not in masks:  # drawn once per site, in the order the sites are first reached
            masks[n.name] = (keep_mask(tuple(s.shape), rho, exact_k=True, generator=gen, dtype=s.dtype,
                                       device=s.device) if exact_k
                             else bernoulli_keep(tuple(s.shape), rho, generator=gen, device=s.device)
                             if rho < 1.0 else None)
        return s if masks[n.name] is None else s.mul_(masks[n.name])

    if not one_block:
        names = graph.ancestors(top.name)
        for n in graph.nodes:
            if n.name in names and n.op == "activation" and not n.is_relu:
                raise UnsupportedLayerError(
                    f"node '{n.name}' is a '{n.kind}' activation; the shadow model reverses ReLU graphs "
                    "only (sample from a node below it, or replace the activation by ReLU)")
        if not fit:  # the plain transpose: every site sums what the blocks above send
            sites = {n.name for n in graph.nodes if n.name in names and (n.is_relu or n.op == "input")}
            return _walk(graph, h, top, [n for n in graph.nodes if n.name in names], sites=sites,
                         stop={graph.input.name}, transform=keep, scale=scale)
        tops = [n for n in reversed(graph.nodes) if n.name in names and (n is top or n.is_relu)]
    else:
        tops = [top]
    values = {top.name: h.reshape(h.shape[0], *top.out_shape)}
    proposals: dict[str, list[torch.Tensor]] = {}
    for b in tops:
        if b is not top:
            if b.name not in proposals:  # pragma: no cover - every ReLU ancestor is some block's site
                raise ConfigError(f"node '{b.name}' receives nothing from '{top.name}'")
            values[b.name] = _sum(proposals.pop(b.name))
        blk = block_of(graph, b)
        step = _step(graph, blk, values[b.name], keep=keep, scale=scale)
        if fit:
            a = fitted[b.name] if fitted is not None and b.name in fitted else \
                _least_squares(block_forward(graph, blk, step), values[b.name])
            if record is not None:
                record[b.name] = a
            for v in step.values():
                v.mul_(a)
        for f, v in step.items():
            proposals.setdefault(f, []).append(v)
    if one_block:
        return {f: vs[0] for f, vs in proposals.items()}
    values[graph.input.name] = _sum(proposals.pop(graph.input.name))
    return values


def _step(graph, blk: Block, h: torch.Tensor, *, keep, scale) -> dict[str, torch.Tensor]:
    """One shadow step over a block: `keep(site, ·)` of the block's transpose at each site."""
    names = {blk.top.name} | {n.name for n in blk.nodes} | {n.name for n in blk.frontier}
    sites = {n.name for n in blk.frontier}
    return _walk(graph, h, blk.top, [n for n in graph.nodes if n.name in names], sites=sites, stop=sites,
                 transform=keep, scale=scale)


def _least_squares(y: torch.Tensor, h: torch.Tensor) -> float:
    """The α minimising `||α y − h||²` (0 when y = 0)."""
    y, hf = y.double().reshape(-1), h.double().reshape(-1).to(y.device)
    yy = float(torch.dot(y, y))
    return float(torch.dot(y, hf)) / yy if yy > 0 else 0.0


def _sum(vs: list[torch.Tensor]) -> torch.Tensor:
    out = vs[0]
    for v in vs[1:]:
        out = out + v
    return out


def graph_sample(graph, h: torch.Tensor, node, *, rho: float = 0.5, alpha: str | float = "scaled",
                 exact_k: bool = False, generator: torch.Generator | int | None = None,
                 fitted: dict | None = None, record: dict | None = None) -> torch.Tensor:
    """`x~ ~ p(x | h)` from node `node` down to the input: `sample_graph`, plus alpha="fit"."""
    rho = _check_args(rho, alpha)
    top = node if not isinstance(node, str) else graph.node(node)
    if alpha != "fit" and fitted is None:
        return sample_graph(graph, h, node=top, rho=rho, alpha=alpha, exact_k=exact_k, generator=generator)
    if top.op == "input" or (top.op == "activation" and not top.is_relu):
        raise ConfigError(f"node '{top.name}' ({top.kind}) cannot start the shadow model; "
                          "start from a ReLU node (or an affine/join node)")
    values = shadow_sites(graph, h, top, rho=rho, alpha=alpha, exact_k=exact_k, generator=generator,
                          fitted=fitted, record=record)
    return values[graph.input.name].reshape(h.shape[0], *graph.input_shape)


def block_fan_in(graph, blk: Block) -> int:
    """Inputs feeding the middle unit of the block's top (middle channel and pixel, away from
    the padding): the nonzeros of its row of `L`."""
    top = blk.top
    e = torch.zeros(1, *top.out_shape, dtype=graph.dtype, device=graph.device)
    e[(0, *(d // 2 for d in top.out_shape))] = 1
    names = {top.name} | {n.name for n in blk.nodes} | {n.name for n in blk.frontier}
    sites = {n.name for n in blk.frontier}
    with torch.no_grad():
        rows = _walk(graph, e, top, [n for n in graph.nodes if n.name in names], sites=sites, stop=sites,
                     transform=lambda n, s: s, scale=lambda n: 1.0)
    return max(1, sum(int((v != 0).sum()) for v in rows.values()))
