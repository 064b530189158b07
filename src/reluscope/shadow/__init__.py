"""The shadow generative model (Arora, Liang, Ma 2015): sample a ReLU net backwards,
measure how reversible it is, reconstruct real images, and augment training (SHADOW).

- `sample`, `sample_chain`: x~ ~ p(x | h), eq. 1 (one layer) and eq. 4 (several);
- `sample_graph`, `transpose_graph`: the same on residual/concat graphs (measurements only);
- `reversibility`, `reversibility_by_layer`: reverse-then-forward error per offset rule;
- `theorem1`, `multilayer`, `run_theory`: Theorems 1, 3.1, 3.2 on Gaussian layers;
- `reconstruct`: real images from each hidden layer, trained vs random weights;
- `ShadowAugment`, `shadow_experiment`: SHADOW training and its four-arm experiment.

Every function taking a model takes an `nn.Module`, a chain `ReluNet` or any `Graph`. On a
graph that is not a chain (a ResNet, a DenseNet) `sample`, `reversibility`, `reconstruct`
and `ShadowAugment` address codes by ReLU node name and run the graph's transpose (see
`_graph_shadow`). The theorems are proved for chains of ReLU layers only: on such a graph
the numbers are measurements, not predictions.
"""

from ._augment import ShadowAugment
from ._experiment import ARMS, ArmResult, ShadowTrainConfig, ShadowTrainResult, shadow_experiment
from ._graph_sampler import sample_graph, transpose_graph
from ._reconstruct import LayerReconstruction, Reconstruction, random_like, reconstruct
from ._reversibility import (
    RULES,
    Reversibility,
    best_threshold,
    relative_errors,
    reversibility,
    reversibility_by_layer,
)
from ._sampler import keep_mask, layer_alpha, sample, sample_chain, transpose
from ._theory import (
    MultilayerResult,
    Theorem1Result,
    TheoryResult,
    gaussian_net,
    multilayer,
    run_theory,
    sparse_codes,
    theorem1,
)

__all__ = [
    "ARMS", "ArmResult", "LayerReconstruction", "MultilayerResult", "RULES", "Reconstruction",
    "Reversibility", "ShadowAugment", "ShadowTrainConfig", "ShadowTrainResult", "Theorem1Result",
    "TheoryResult", "best_threshold", "gaussian_net", "keep_mask", "layer_alpha", "multilayer",
    "random_like", "reconstruct", "relative_errors", "reversibility", "reversibility_by_layer",
    "run_theory", "sample", "sample_chain", "sample_graph", "shadow_experiment", "sparse_codes", "theorem1",
    "transpose", "transpose_graph",
]
