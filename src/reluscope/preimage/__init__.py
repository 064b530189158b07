"""Pre-images of ReLU layers (Behrmann et al. 2018): singleton, compact or unbounded.

`classify(W, b, x)` decides the kind of the pre-image of `ReLU(W x + b)` at one
sample with a checked certificate; `classify_batch` runs many samples in parallel
processes; `is_omnidirectional(M)` is the test underneath; `wendel_probability` is
the closed form for random rows.
"""

from ._classify import KINDS, PreimageResult, check_layer, classify
from ._omni import OmniResult, certifies_direction, is_omnidirectional
from ._tol import Tolerances, numerical_rank
from ._wendel import WendelCheck, monte_carlo_omni, wendel_probability

__all__ = ["KINDS", "OmniResult", "PreimageResult", "Tolerances", "certifies_direction", "check_layer",
           "classify", "is_omnidirectional", "monte_carlo_omni", "numerical_rank", "WendelCheck",
           "wendel_probability"]
