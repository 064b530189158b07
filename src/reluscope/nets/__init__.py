"""Models as ordered affine layers with activations: import, build, checkpoint."""

from ._builders import build, cifar_cnn, locally_connected, mlp
from ._checkpoint import save_checkpoint
from ._import import SUPPORTED, ModelFile, load, read_model_file
from ._layer import Layer
from ._locally import LocallyConnected2d
from ._relunet import ReluNet, Trace

__all__ = ["Layer", "LocallyConnected2d", "ReluNet", "SUPPORTED", "Trace", "build",
           "ModelFile", "cifar_cnn", "load", "locally_connected", "mlp",
           "read_model_file", "save_checkpoint"]
