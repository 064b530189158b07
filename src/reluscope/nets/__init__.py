"""Models as graphs of named nodes (a chain is a `ReluNet`): import, build, checkpoint."""

from ._builders import alexnet_cifar, build, cifar_cnn, gaussian_init, locally_connected, mlp
from ._checkpoint import save_checkpoint
from ._files import ModelFile, read_model_file
from ._graph import Graph, Node, UnknownNodeError, as_graph
from ._import import SUPPORTED, load
from ._layer import Layer
from ._locally import LocallyConnected2d
from ._relunet import ReluNet, Trace, require_chain
from ._resnet import BasicBlock, ResNet, resnet18, resnet20

__all__ = ["BasicBlock", "Graph", "Layer", "LocallyConnected2d", "ModelFile", "Node", "ReluNet",
           "ResNet", "SUPPORTED", "Trace", "UnknownNodeError", "alexnet_cifar", "as_graph", "build",
           "cifar_cnn", "gaussian_init", "load", "locally_connected", "mlp", "read_model_file",
           "require_chain", "resnet18", "resnet20",
           "save_checkpoint"]
