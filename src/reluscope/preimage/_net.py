"""Pre-images of a ReLU layer of a whole model, in that layer's own input space."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ..nets import require_chain
from ._batch import BatchResult, classify_batch
from ._tol import Tolerances


@dataclass(frozen=True)
class LayerPreimage:
    """Pre-image kinds of one ReLU layer of a model over a set of samples.

    Attributes:
        layer: the layer's name; index: its position in the ReluNet.
        m, n: outputs and inputs of the layer's affine map.
        space: in words, the space the pre-image lives in.
        batch: the per-sample results.
    """

    layer: str
    index: int
    m: int
    n: int
    space: str
    batch: BatchResult
    tolerances: Tolerances = Tolerances()

    def to_dict(self, samples: bool = True) -> dict:
        return dict(layer=self.layer, index=self.index, outputs=self.m, inputs=self.n, space=self.space,
                    tolerances=self.tolerances.to_dict(), **self.batch.to_dict(samples=samples))


def resolve_relu_layer(net, layer: int | str) -> int:
    """Index of `layer` (index or name) in `net`, which must end in a plain ReLU."""
    net = require_chain(net, "pre-image classification")
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


def classify_layer(net, layer: int | str, x: torch.Tensor, tol: Tolerances = Tolerances(), *,
                   workers: int | None = None, search: bool = True) -> LayerPreimage:
    """Classify the pre-image of ReLU layer `layer`'s output for every model input in x.

    For a layer deeper in the net the pre-image is taken in that layer's own input space
    (the previous layer's outputs), as the theory treats one layer at a time.

    Arguments:
        net: a `reluscope.nets.ReluNet`.
        layer: index or name of a layer whose activation is a plain ReLU.
        x: model inputs `(N, *input_shape)`.
        tol, workers, search: as for `classify_batch`.

    Returns:
        A `LayerPreimage`.
    """
    index = resolve_relu_layer(net, layer)
    net.check_input(x)
    W, b = layer_system(net, index)
    inputs = layer_inputs(net, index, x)
    batch = classify_batch(W, b, inputs, tol, workers=workers, search=search,
                           desc=f"pre-images of layer {index}")
    return LayerPreimage(net.layers[index].name, index, W.shape[0], W.shape[1],
                         describe_space(net, index), batch, tol)
