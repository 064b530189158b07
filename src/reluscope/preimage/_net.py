"""Pre-images of a ReLU layer of a whole model, in that layer's own input space (on a
chain), or of a ReLU node in the joint space of its sources (on any graph, `_graph`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._display import Tabular
from .._frames import frame
from ..errors import ConfigError
from ..nets import Graph, as_graph
from ._batch import BatchResult, classify_batch
from ._graph import affine_region, describe_region, region_system, resolve_relu_node, source_values
from ._sparse import classify_batch_sparse, sparse_layer_system
from ._tol import Tolerances


@dataclass(frozen=True)
class LayerPreimage(Tabular):
    """Pre-image kinds of one ReLU layer (or graph node) of a model over a set of samples.

    Attributes:
        layer: the layer's (node's) name; index: its position in the ReluNet (the graph).
        m, n: outputs and inputs of the layer's affine map.
        space: in words, the space the pre-image lives in.
        batch: the per-sample results.
        sources: on a graph that is not a chain, the nodes whose joint values are the
            pre-image's space (empty on a chain: the previous layer's outputs).
    """

    layer: str
    index: int
    m: int
    n: int
    space: str
    batch: BatchResult
    tolerances: Tolerances = Tolerances()
    sources: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How to name the target in text: `layer 2 ('fc2')` or `node 'stage1.0.relu2'`."""
        return f"node '{self.layer}'" if self.sources else f"layer {self.index} ('{self.layer}')"

    def to_frame(self):
        """One row per sample, led by the layer's (node's) name."""
        return frame([dict(layer=self.layer, **row) for row in self.batch.rows()])

    def _figures(self):
        from ._plots import positives_histogram

        yield (positives_histogram([(self.label, self.batch)], self.n),
               f"Positive outputs of {self.label} per sample, by pre-image kind: right of the dashed "
               "line (the input dimension) a singleton is possible from the rank alone")

    def to_dict(self, samples: bool = True) -> dict:
        out = dict(layer=self.layer, index=self.index, outputs=self.m, inputs=self.n, space=self.space,
                   tolerances=self.tolerances.to_dict(), **self.batch.to_dict(samples=samples))
        if self.sources:
            out["sources"] = list(self.sources)
        return out


def resolve_relu_layer(net, layer: int | str) -> int | str:
    """On a chain, the index of `layer` (index or name), which must end in a plain ReLU; on
    any other graph, the name of the ReLU node `layer` (a name, or an index among the ReLU
    nodes)."""
    if not net.is_chain:
        return resolve_relu_node(net, layer).name
    try:
        index = net.index(layer)
    except (KeyError, IndexError) as exc:
        raise ConfigError(f"{exc.args[0]}; relu layers: {net.relu_layers()}") from None
    if not net.layers[index].is_relu:
        lay = net.layers[index]
        raise ConfigError(f"layer {index} ('{lay.name}') has activation '{lay.activation}', not a plain "
                          f"ReLU; choose one of the ReLU layers {net.relu_layers()}")
    return index


def layer_system(net, index: int, max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The layer's affine map as a dense float64 `W (m, n)` and `b (m,)` (conv layers unrolled)."""
    net64 = net.copy(dtype=torch.float64, device="cpu")
    lay = net64.layers[index]
    kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
    with torch.no_grad():
        W = lay.dense_matrix(**kwargs).detach().double().cpu().numpy()
        b = lay.affine(torch.zeros(1, *lay.in_shape, dtype=torch.float64)).reshape(-1).numpy()
    return W, b


def layer_inputs(net, index: int, x: torch.Tensor) -> np.ndarray:
    """Inputs of layer `index` for the model inputs x, flattened, in float64."""
    net64 = net.copy(dtype=torch.float64, device="cpu")
    x = x.to(torch.float64)
    with torch.no_grad():
        h = x if index == 0 else net64.forward(x, upto=index - 1)
    return h.reshape(len(x), -1).numpy()


def describe_space(net, index: int) -> str:
    lay = net.layers[index]
    n = math.prod(lay.in_shape)
    if index == 0:
        return f"the model's input space R^{n}"
    prev = net.layers[index - 1]
    return (f"layer {index} ('{lay.name}') input space R^{n}, i.e. the outputs of layer {index - 1} "
            f"('{prev.name}'); not pulled back to the model's input")


def classify_layer(model_or_net, layer: int | str, x: torch.Tensor, tol: Tolerances = Tolerances(), *,
                   workers: int | None = None, search: bool = True,
                   scheduler: str | None = None, dense: bool = False) -> LayerPreimage:
    """Classify the pre-image of ReLU layer `layer`'s output for every model input in x.

    On a chain, a layer deeper in the net has its pre-image taken in that layer's own
    input space (the previous layer's outputs), as the theory treats one layer at a time.
    On any other graph, `layer` is a ReLU node and the pre-image lives in the joint
    space of the nodes its pre-activation is affine in (see `reluscope.preimage._graph`).

    Arguments:
        model_or_net: an `nn.Module` or a graph from `reluscope.nets.load`.
        layer: a chain layer (index or name) whose activation is a plain ReLU, or on a
            graph a ReLU node (name, or index among the ReLU nodes).
        x: model inputs `(N, *input_shape)`.
        tol: as for `classify_batch`.
        workers: as for `classify_batch`.
        search: as for `classify_batch`.
        scheduler: as for `classify_batch` (a Dask scheduler address runs the samples there).
        dense: unroll a conv layer into a dense matrix, as before the sparse path
            (`reluscope.preimage._sparse`, the default for conv layers: the same answers, faster).

    Returns:
        A `LayerPreimage`.
    """
    net = as_graph(model_or_net, tuple(x.shape[1:]))
    target = resolve_relu_layer(net, layer)
    net.check_input(x)
    if not net.is_chain:
        return _classify_node(net, target, x, tol, workers, search, scheduler)
    system = None if dense else sparse_layer_system(net, target)
    W, b = layer_system(net, target) if system is None else system
    inputs = layer_inputs(net, target, x)
    run = classify_batch if system is None else classify_batch_sparse
    batch = run(W, b, inputs, tol, workers=workers, search=search, scheduler=scheduler,
                desc=f"pre-images of layer {target}")
    return LayerPreimage(net.layers[target].name, target, W.shape[0], W.shape[1],
                         describe_space(net, target), batch, tol)


def _classify_node(graph: Graph, name: str, x, tol, workers, search, scheduler=None) -> LayerPreimage:
    node = graph.node(name)
    region = affine_region(graph, node)
    W, b = region_system(graph, region)
    batch = classify_batch(W, b, source_values(graph, region, x), tol, workers=workers, search=search,
                           scheduler=scheduler, desc=f"pre-images of {name}")
    return LayerPreimage(name, graph.nodes.index(node), W.shape[0], W.shape[1],
                         describe_region(graph, region), batch, tol, region.sources)
