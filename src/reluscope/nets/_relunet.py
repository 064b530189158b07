"""`ReluNet`: a model as an ordered list of affine layers, each with its activation."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ShapeError
from ._layer import Layer


@dataclass(frozen=True)
class Trace:
    """Every intermediate of one forward pass.

    `pre[i]` is layer i's affine output, `post[i]` its activation's output, and
    `masks[i]` the activation pattern `pre[i] > 0` (None for non-ReLU-like layers).
    """

    inputs: torch.Tensor
    pre: list[torch.Tensor]
    post: list[torch.Tensor]
    masks: list[torch.Tensor | None]

    @property
    def output(self) -> torch.Tensor:
        return self.post[-1]


class ReluNet:
    """The layers of a feed-forward ReLU model, in order.

    Build one with `reluscope.nets.load`. It is a view: it shares the parameters of
    `model`, so it always sees the model's current weights.
    """

    def __init__(self, model: nn.Module, layers: list[Layer], input_shape: tuple[int, ...]):
        self.model = model
        self.layers = layers
        self.input_shape = tuple(input_shape)

    # -- introspection ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, key: int | str) -> Layer:
        if isinstance(key, str):
            return self.layer(key)
        return self.layers[key]

    def __iter__(self):
        return iter(self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = ", ".join(lay.name for lay in self.layers)
        raise KeyError(f"no layer named '{name}'; layers are: {names}")

    def index(self, key: int | str) -> int:
        """Position of a layer given by index (negative allowed) or by name."""
        if isinstance(key, str):
            if key.lstrip("-").isdigit():
                key = int(key)
            else:
                return self.layers.index(self.layer(key))
        n = len(self.layers)
        if not -n <= key < n:
            raise IndexError(f"layer index {key} out of range for a net of {n} layers")
        return key % n

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def device(self) -> torch.device:
        return self.layers[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].parameters()[0].dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def summary(self) -> list[dict]:
        """The layer table: one dict per layer (name, type, shapes, parameters, activation)."""
        return [layer.describe() for layer in self.layers]

    def relu_layers(self) -> list[int]:
        """Indices of the layers whose activation is a plain ReLU."""
        return [i for i, layer in enumerate(self.layers) if layer.is_relu]

    def is_mlp(self) -> bool:
        return all(layer.kind == "linear" for layer in self.layers)

    # -- evaluation -------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise ShapeError unless `x` is a batch `(B, *input_shape)`."""
        if tuple(x.shape[1:]) != self.input_shape and not (
            self.layers[0].flatten and math.prod(x.shape[1:]) == math.prod(self.input_shape)
        ):
            raise ShapeError(
                f"input has shape {tuple(x.shape)} but the model expects (batch, "
                f"{', '.join(map(str, self.input_shape))}); reshape the data or pass "
                "input_shape= when loading the model")

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Output of layer `upto` (default: the last), after its activation."""
        self.check_input(x)
        stop = len(self.layers) if upto is None else self.index(upto) + 1
        for layer in self.layers[:stop]:
            x = layer(x)
        return x

    __call__ = forward

    def trace(self, x: torch.Tensor) -> Trace:
        """Run `x` through every layer and keep all pre-activations and patterns."""
        self.check_input(x)
        pre, post, masks = [], [], []
        h = x
        for layer in self.layers:
            z = layer.affine(h)
            h = layer.activate(z)
            pre.append(z)
            post.append(h)
            masks.append(z > 0 if layer.activation in ("relu", "leaky_relu") else None)
        return Trace(x, pre, post, masks)

    def copy(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> ReluNet:
        """A ReluNet over a deep copy of the model, optionally cast (e.g. to float64)."""
        from ._import import load_module

        model = copy.deepcopy(self.model)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        return load_module(model, input_shape=self.input_shape)

    def __repr__(self) -> str:
        rows = ", ".join(f"{la.name}:{la.kind}->{la.activation}" for la in self.layers)
        return f"ReluNet(input_shape={self.input_shape}, layers=[{rows}])"
