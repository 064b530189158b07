"""Jacobians of every layer output with respect to the input, by forward mode.

A batch of input-space tangents (a chunk of the identity) is pushed through the
ReluNet layer by layer next to the sample itself: the linear part of each layer is
`layer.affine(t, bias=False)`, the activation's derivative is the 0/1 mask for a ReLU
(PyTorch's convention: derivative 0 at 0) and `torch.func.jvp` for anything else. One
pass gives the columns of *all* layers' Jacobians for that chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, ModelError, ResourceError, ShapeError

DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Output:
    """One layer output whose Jacobian is taken.

    Attributes:
        index: 1-based position among all outputs of the net, in the order
            pre(layer 0), post(layer 0), pre(layer 1), ... (the paper's "layer k").
        layer: index of the layer in `net.layers`.
        name: the layer's name.
        stage: `pre` (affine output, before the activation) or `post` (after it).
        shape: per-sample shape of the output.
        activation: the layer's activation (`relu`, `identity`, ...).
        inputs: on a graph (stage `out`, one output per node), the names of the nodes it
            reads (a ReLU node's input is its pre-activation); empty on a chain.
    """

    index: int
    layer: int
    name: str
    stage: str
    shape: tuple[int, ...]
    activation: str
    inputs: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def label(self) -> str:
        return f"{self.index}: {self.name} ({self.stage})"

    def to_dict(self) -> dict:
        d = dict(index=self.index, layer=self.layer, name=self.name, stage=self.stage,
                 shape=list(self.shape), activation=self.activation)
        if self.inputs:
            d["inputs"] = list(self.inputs)
        return d


def as_net(model_or_net, x: torch.Tensor | None = None, dtype: torch.dtype | None = None):
    """A ReluNet for `model_or_net` (an `nn.Module` or a ReluNet), cast to `dtype`.

    The model is never modified: a cast works on a copy.
    """
    from ..nets import ReluNet, load

    if isinstance(model_or_net, ReluNet):
        net = model_or_net
    elif isinstance(model_or_net, nn.Module):
        # x is a batch; a 1-D tensor can only be one sample of a vector model.
        shape = None if x is None else tuple(x.shape[1:] if x.dim() > 1 else x.shape)
        net = load(model_or_net, input_shape=shape)
    else:
        raise ModelError(f"expected a torch.nn.Module or a ReluNet, got {type(model_or_net).__name__}; "
                         "pass the model itself or reluscope.nets.load(model)")
    if dtype is not None and net.dtype != dtype:
        net = net.copy(dtype=dtype)
    return net


def non_chain(model_or_net, x):
    """The loaded graph when `model_or_net` is not a chain (a ReluNet), else None."""
    from ..nets import Graph, ReluNet, load

    if isinstance(model_or_net, ReluNet):
        return None
    if isinstance(model_or_net, Graph):
        return model_or_net
    if isinstance(model_or_net, nn.Module) and isinstance(x, torch.Tensor):
        shape = tuple(x.shape[1:] if x.dim() > 1 else x.shape)
        try:
            graph = load(model_or_net, input_shape=shape)
        except Exception:  # noqa: BLE001 - let the chain path report the problem as before
            return None
        return None if isinstance(graph, ReluNet) else graph
    return None


def as_batch(net, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`x` as a batch `(B, *input_shape)` of `dtype` on the net's device (one sample allowed)."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"inputs must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == len(net.input_shape) and tuple(x.shape) == net.input_shape:
        x = x.unsqueeze(0)
    net.check_input(x)
    if x.shape[0] == 0:
        raise ShapeError("the input batch is empty; pass at least one sample")
    x = x.to(device=net.device, dtype=dtype).reshape(x.shape[0], *net.input_shape)
    if not torch.isfinite(x).all():
        raise ShapeError("the inputs contain NaN or infinite values; clean the data first")
    return x


def outputs(net, layers: Iterable[int | str] | None = None,
            stages: Sequence[str] = ("pre", "post")) -> list[Output]:
    """The outputs analysed for `layers` (default: all): `pre`, and `post` unless identity.

    `stages` keeps only some stages (e.g. `("pre",)`); the indices stay those of all outputs.

    >>> from reluscope import nets
    >>> [o.label for o in outputs(nets.load(nets.mlp([4, 3, 2])))]
    ['1: 1 (pre)', '2: 1 (post)', '3: 3 (pre)']
    """
    wanted = None if layers is None else {_layer_index(net, k) for k in _as_list(layers)}
    if wanted is not None and not wanted:
        raise ConfigError("no layers selected; pass layers=None for all layers")
    out, k = [], 0
    for i, layer in enumerate(net.layers):
        layer_stages = ["pre"] if layer.activation == "identity" else ["pre", "post"]
        for stage in layer_stages:
            k += 1
            if (wanted is None or i in wanted) and stage in stages:
                shape = layer.out_shape if stage == "pre" else _post_shape(layer)
                out.append(Output(k, i, layer.name, stage, tuple(shape), layer.activation))
    return out


def _layer_index(net, key: int | str) -> int:
    """Index of a layer by name (exact match first: Sequential names are digits) or index."""
    if isinstance(key, str):
        for i, layer in enumerate(net.layers):
            if layer.name == key:
                return i
    try:
        return net.index(key)
    except (IndexError, KeyError) as exc:
        raise ConfigError(f"{exc.args[0]}; pick layers by index or name "
                          "(see `reluscope info MODEL`)") from None


def _as_list(layers) -> list:
    if isinstance(layers, (int, str)):
        return [layers]
    return list(layers)


def _post_shape(layer) -> tuple[int, ...]:
    if layer.activation in ("relu", "leaky_relu", "identity"):
        return tuple(layer.out_shape)
    with torch.no_grad():
        z = torch.zeros(1, *layer.out_shape, dtype=layer.weight.dtype, device=layer.device)
        return tuple(layer.activate(z).shape[1:])


def activation_jvp(layer, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Derivative of `layer.activate` at `z` (batch of 1) applied to tangents `t` (k, ...)."""
    act = layer.activation
    if act == "identity":
        return t
    if act == "relu":
        return t * (z > 0).to(t.dtype)
    if act == "leaky_relu":
        slope = layer.post[0].negative_slope
        return torch.where(z > 0, t, slope * t)

    def one(v):
        return torch.func.jvp(layer.activate, (z,), (v.unsqueeze(0),))[1].squeeze(0)

    return torch.func.vmap(one)(t)


def propagate(net, x1: torch.Tensor, tangents: torch.Tensor,
              stop: int | None = None) -> Iterator[tuple[int, str, torch.Tensor, torch.Tensor]]:
    """Push one sample `x1` (1, *in) and tangents (k, *in) through the layers.

    Yields `(layer index, stage, value (1, ...), tangent (k, ...))` for every pre- and
    (non-identity) post-activation output, up to layer `stop` (exclusive).
    """
    for i, stage, value, t in propagate_windows(net, x1, Window.whole(tangents), stop):
        yield i, stage, value, t.full()


@dataclass
class Window:
    """Tangents `(k, C, H, W)` known to vanish outside rows `r0:r0+h`, columns `c0:c0+w`.

    `data` holds only the window `(k, C, h, w)`; non-image tensors are always whole.
    """

    data: torch.Tensor
    shape: tuple[int, ...]
    r0: int = 0
    c0: int = 0

    @classmethod
    def whole(cls, t: torch.Tensor) -> Window:
        return cls(t, tuple(t.shape[1:]))

    @property
    def is_whole(self) -> bool:
        return tuple(self.data.shape[1:]) == tuple(self.shape)

    def full(self) -> torch.Tensor:
        if self.is_whole:
            return self.data
        k, _, h, w = self.data.shape
        out = self.data.new_zeros(k, *self.shape)
        out[:, :, self.r0:self.r0 + h, self.c0:self.c0 + w] = self.data
        return out

    def crop(self, z: torch.Tensor) -> torch.Tensor:
        """The same window of a full tensor `z` (1, *shape)."""
        if self.is_whole:
            return z
        h, w = self.data.shape[-2:]
        return z[:, :, self.r0:self.r0 + h, self.c0:self.c0 + w]

    def flat_index(self) -> torch.Tensor:
        """Flat indices (in the full per-sample tensor) of the window's entries, ascending."""
        n = math.prod(self.shape)
        if self.is_whole:
            return torch.arange(n, device=self.data.device)
        h, w = self.data.shape[-2:]
        idx = torch.arange(n, device=self.data.device).reshape(self.shape)
        return idx[:, self.r0:self.r0 + h, self.c0:self.c0 + w].reshape(-1)


def propagate_windows(net, x1: torch.Tensor, t: Window,
                      stop: int | None = None) -> Iterator[tuple[int, str, torch.Tensor, Window]]:
    """`propagate` on windowed tangents: conv layers compute only the rows they reach.

    A conv output depends on a window of its input, so tangents supported on a spatial
    tile stay supported on a (slightly grown) tile; computing just that tile is exact and
    saves most of the work of early layers.
    """
    h = x1
    with torch.no_grad():
        for i, layer in enumerate(net.layers[:stop]):
            z = layer.affine(h)
            t = _affine_window(layer, t)
            yield i, "pre", z, t
            if layer.activation == "identity":
                h = z
                continue
            h = layer.activate(z)
            if layer.activation in ("relu", "leaky_relu"):
                t = Window(activation_jvp(layer, t.crop(z), t.data), t.shape, t.r0, t.c0)
            else:
                t = Window.whole(activation_jvp(layer, z, t.full()))
            yield i, "post", h, t


def _affine_window(layer, t: Window) -> Window:
    args = layer.conv_args
    plain = (not isinstance(args.get("padding"), str)
             and getattr(layer.module, "padding_mode", "zeros") == "zeros")
    if layer.kind not in ("conv2d", "avgpool2d") or layer.flatten or t.data.dim() != 4 or not plain:
        return Window.whole(layer.affine(t.full(), bias=False))
    w = layer.parameters()[0].to(t.data.dtype)
    kh, kw = w.shape[-2:]
    (sh, sw), (ph, pw), (dh, dw) = (_pair(args["stride"]), _pair(args["padding"]), _pair(args["dilation"]))
    _, _, ho, wo = (None, *layer.out_shape)
    hh, ww = t.data.shape[-2:]
    rows = _out_range(t.r0, hh, kh, sh, ph, dh, ho)
    cols = _out_range(t.c0, ww, kw, sw, pw, dw, wo)
    if rows is None or cols is None:
        return Window.whole(layer.affine(t.full(), bias=False))
    # input rows/cols read by the output window, zero outside the tangent's window
    r_lo, c_lo = rows[0] * sh - ph, cols[0] * sw - pw
    r_n, c_n = (rows[1] - rows[0]) * sh + dh * (kh - 1) + 1, (cols[1] - cols[0]) * sw + dw * (kw - 1) + 1
    buf = t.data.new_zeros(t.data.shape[0], t.data.shape[1], r_n, c_n)
    a0, a1 = max(r_lo, t.r0), min(r_lo + r_n, t.r0 + hh)
    b0, b1 = max(c_lo, t.c0), min(c_lo + c_n, t.c0 + ww)
    src = t.data[:, :, a0 - t.r0:a1 - t.r0, b0 - t.c0:b1 - t.c0]
    buf[:, :, a0 - r_lo:a1 - r_lo, b0 - c_lo:b1 - c_lo] = src
    out = torch.nn.functional.conv2d(buf, w, None, stride=(sh, sw), padding=0, dilation=(dh, dw),
                                     groups=args["groups"])
    return Window(out, tuple(layer.out_shape), rows[0], cols[0])


def _out_range(start: int, size: int, k: int, s: int, p: int, d: int, n_out: int) -> tuple[int, int] | None:
    """First and last output positions whose receptive field meets input [start, start+size)."""
    lo = max(0, -(-(start + p - d * (k - 1)) // s))
    hi = min(n_out - 1, (start + size - 1 + p) // s)
    return (lo, hi) if lo <= hi else None


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def input_chunks(shape: Sequence[int], chunk: int) -> list[torch.Tensor]:
    """Partition the flat input indices into chunks of about `chunk` indices.

    Image inputs `(C, H, W)` are cut into square spatial tiles with all channels, so each
    chunk's tangents touch a compact region of every conv layer (small supports);
    other inputs are cut into consecutive ranges.
    """
    n = math.prod(shape)
    if chunk < 1:
        raise ConfigError(f"chunk size must be positive, got {chunk}")
    if len(shape) != 3 or chunk >= n:
        return list(torch.arange(n).split(chunk))
    c, h, w = shape
    side = max(1, int(math.sqrt(max(1, chunk // c))))
    idx = torch.arange(n).reshape(c, h, w)
    return [idx[:, i:i + side, j:j + side].reshape(-1)
            for i in range(0, h, side) for j in range(0, w, side)]


def basis(shape: Sequence[int], cols: torch.Tensor, dtype, device) -> torch.Tensor:
    """The unit vectors `e_i` for `i` in `cols`, shaped `(len(cols), *shape)`."""
    e = torch.zeros(len(cols), math.prod(shape), dtype=dtype, device=device)
    e[torch.arange(len(cols)), cols.to(device)] = 1
    return e.reshape(len(cols), *shape)


def basis_window(shape: Sequence[int], cols: torch.Tensor, dtype, device) -> Window:
    """`basis` as a Window over the bounding box of `cols` (image inputs), else whole."""
    if len(shape) != 3:
        return Window.whole(basis(shape, cols, dtype, device))
    c, h, w = shape
    cols = cols.to(device)
    ch, r, q = cols // (h * w), (cols // w) % h, cols % w
    r0, q0 = int(r.min()), int(q.min())
    box = (c, int(r.max()) - r0 + 1, int(q.max()) - q0 + 1)
    data = torch.zeros(len(cols), *box, dtype=dtype, device=device)
    data[torch.arange(len(cols), device=device), ch, r - r0, q - q0] = 1
    return Window(data, tuple(shape), r0, q0)


@contextmanager
def single_threaded():
    """Run torch ops on one thread inside the block (restored after).

    LAPACK's symmetric eigensolvers gain little from threads and slow down sharply when
    the cores are shared; one thread per solve is the robust choice.
    """
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield prev
    finally:
        torch.set_num_threads(prev)


def check_bytes(need: float, max_bytes: float, what: str) -> None:
    """Raise ResourceError when `need` bytes exceed `max_bytes`."""
    if need > max_bytes:
        raise ResourceError(f"{what} needs about {need / 2**20:,.0f} MiB, over the limit of "
                            f"{max_bytes / 2**20:,.0f} MiB; raise max_bytes, select fewer layers "
                            "with layers=..., or use smaller inputs")


def estimate_jacobian_bytes(net, outs: Sequence[Output], dtype=torch.float64, chunk: int = 256,
                            samples: int = 1) -> int:
    """Bytes for the explicit Jacobians of `outs` for `samples` samples plus one chunk's tangents."""
    n = math.prod(net.input_shape)
    item = torch.tensor([], dtype=dtype).element_size()
    widest = max(math.prod(layer.out_shape) for layer in net.layers)
    return item * (samples * n * sum(o.size for o in outs) + 3 * min(chunk, n) * widest)


def jacobians(model_or_net, x: torch.Tensor, layers: Iterable[int | str] | None = None,
              dtype: torch.dtype = torch.float64, chunk: int = 256,
              max_bytes: float = DEFAULT_MAX_BYTES,
              stages: Sequence[str] = ("pre", "post")) -> dict[Output, torch.Tensor]:
    """Explicit Jacobians `d output / d input` of every selected layer output.

    Arguments:
        model_or_net: an `nn.Module` (imported with `reluscope.nets.load`), a ReluNet or
            a `Graph`. A model that is not a chain takes the graph path: one `out` output
            per node, `layers` picks nodes by name or position in `graph.nodes` and
            `stages` does not apply.
        x: one sample `(*input_shape)` or a batch `(B, *input_shape)`.
        layers: layer indices or names (default: all); each gives its `pre` output and,
            unless the activation is the identity, its `post` output.
        dtype: computing dtype (the net is copied when it differs).
        chunk: input directions pushed through the net at once (bounds memory).
        max_bytes: a ResourceError is raised up front when the estimate exceeds it.
        stages: which outputs of each layer, `pre` and/or `post`.

    Returns:
        `{Output: tensor (B, output size, input size)}` in output order.

    >>> from reluscope import nets
    >>> J = jacobians(nets.mlp([3, 4, 2]), torch.ones(1, 3))
    >>> [tuple(j.shape) for j in J.values()]
    [(1, 4, 3), (1, 4, 3), (1, 2, 3)]
    """
    graph = non_chain(model_or_net, x)
    if graph is not None:
        from ._graph_spectra import graph_jacobians

        return graph_jacobians(graph, x, layers, dtype, chunk, max_bytes)
    net = as_net(model_or_net, x, dtype)
    xb = as_batch(net, x, dtype)
    outs = outputs(net, layers, stages)
    if not outs:
        raise ConfigError(f"no outputs for stages {tuple(stages)}; use 'pre' and/or 'post'")
    check_bytes(estimate_jacobian_bytes(net, outs, dtype, chunk, xb.shape[0]), max_bytes,
                "the explicit Jacobians")
    n = math.prod(net.input_shape)
    wanted = {(o.layer, o.stage): o for o in outs}
    stop = max(o.layer for o in outs) + 1
    result = {o: torch.empty(xb.shape[0], o.size, n, dtype=dtype, device=xb.device) for o in outs}
    for b in range(xb.shape[0]):
        for cols in input_chunks(net.input_shape, chunk):
            e = basis(net.input_shape, cols, dtype, xb.device)
            for i, stage, _, t in propagate(net, xb[b:b + 1], e, stop):
                o = wanted.get((i, stage))
                if o is not None:
                    result[o][b][:, cols.to(xb.device)] = t.reshape(len(cols), -1).T
    return result
