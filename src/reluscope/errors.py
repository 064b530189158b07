"""One error family for everything a user can cause.

Each message names the thing that is wrong and how to fix it; the CLI prints it on
one line and exits with status 2.
"""

from __future__ import annotations


class ReluscopeError(Exception):
    """Base class of every error a user can cause (bad file, bad model, bad input)."""


class DataError(ReluscopeError):
    """A data set is missing, malformed or inconsistent."""


class ModelError(ReluscopeError):
    """A model cannot be imported or analysed (unsupported layer, NaN weights...)."""


class UnsupportedLayerError(ModelError):
    """The model contains a layer reluscope cannot express as affine map + activation."""


class NotAChainError(ModelError):
    """An analysis that reads chains of layers was given a graph with joins or other
    activations; the message names the node that makes it a graph."""


class CheckpointError(ModelError):
    """A checkpoint file is missing, corrupt or of an unknown format."""


class ShapeError(ReluscopeError):
    """An input tensor does not have the shape the model or analysis expects."""


class ResourceError(ReluscopeError):
    """A computation would need more memory than allowed."""


class ConfigError(ReluscopeError):
    """A command-line option, spec string or config file is invalid."""


class DependencyError(ReluscopeError):
    """An optional dependency (pandas, pyarrow...) is missing; the message names the pip command."""
