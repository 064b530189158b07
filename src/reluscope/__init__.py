"""reluscope: test the theory of ReLU networks on real models."""

from ._frames import to_frame
from .errors import ReluscopeError

__version__ = "0.1.0"
__all__ = ["ReluscopeError", "__version__", "to_frame"]
