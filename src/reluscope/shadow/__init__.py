"""The shadow generative model (Arora, Liang, Ma 2015): sample a ReLU net backwards,
measure how reversible it is, reconstruct real images, and augment training (SHADOW)."""

from ._augment import ShadowAugment
from ._experiment import ARMS, ArmResult, ShadowTrainConfig, ShadowTrainResult, shadow_experiment
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
from ._theory import MultilayerResult, Theorem1Result, gaussian_net, multilayer, sparse_codes, theorem1

__all__ = ["ARMS", "ArmResult", "ShadowTrainConfig", "ShadowTrainResult", "shadow_experiment",
           "ShadowAugment", "LayerReconstruction", "Reconstruction", "random_like", "reconstruct",
           "MultilayerResult", "Theorem1Result", "gaussian_net", "multilayer", "sparse_codes", "theorem1",
           "RULES", "Reversibility", "best_threshold", "relative_errors", "reversibility",
           "reversibility_by_layer", "keep_mask", "layer_alpha", "sample", "sample_chain", "transpose"]
