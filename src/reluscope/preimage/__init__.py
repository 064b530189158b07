"""Pre-images of ReLU layers (Behrmann et al. 2018): singleton, compact or unbounded.

`classify(W, b, x)` decides the kind of the pre-image of `ReLU(W x + b)` at one
sample with a checked certificate; `classify_batch` runs many samples in parallel
processes; `is_omnidirectional(M)` is the test underneath; `wendel_probability` is
the closed form for random rows. `classify_layer(model, layer, x)` classifies a ReLU
layer of a chain, or a ReLU node of any graph (in the joint space of its sources).
"""

from ._batch import BatchResult, classify_batch, default_workers
from ._classify import KINDS, PreimageResult, check_layer, classify
from ._net import LayerPreimage, classify_layer
from ._omni import OmniResult, certifies_direction, is_omnidirectional
from ._tol import Tolerances, numerical_rank
from ._wendel import WendelCheck, monte_carlo_omni, wendel_probability

__all__ = ["BatchResult", "KINDS", "LayerPreimage", "OmniResult", "PreimageResult", "Tolerances",
           "WendelCheck", "certifies_direction", "check_layer", "classify", "classify_batch",
           "classify_layer", "default_workers", "is_omnidirectional", "monte_carlo_omni", "numerical_rank",
           "wendel_probability"]
