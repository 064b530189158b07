"""reluscope: test the theory of ReLU networks on real models."""

from .errors import ReluscopeError

__version__ = "0.1.0"
__all__ = ["ReluscopeError", "__version__"]
