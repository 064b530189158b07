"""Stability of the inverse: Jacobians of every layer and their singular value spectra.

`spectra(model, x)` gives, for each layer output (before and after each activation), the
full singular values of its Jacobian with respect to the input at each sample, the
numerical rank, the condition number over the nonzero part and the active units
(Behrmann et al. 2018, PAPERS.md §2). `mask_product` / `check_mask_product` rebuild the
Jacobians as products of layer matrices and ReLU masks; `lemma_check` / `lemma_checks`
test the lemma on removing weakly correlated rows. On a model that is not a chain (a
`Graph`: residual nets, concatenations) each node has one output (stage `out`): spectra and
Jacobians of every node, the lemma at every ReLU node (A = Jacobian of the node it reads),
and the mask product summed over paths where branches join. The paper's reproduction lives
in `reluscope.jacobian._reproduce` (`reluscope reproduce behrmann --part stability`).
"""

from ._jacobians import DEFAULT_MAX_BYTES, Output, jacobians, outputs
from ._lemma import LayerLemma, LemmaCheck, lemma_check, lemma_checks
from ._masks import MaskProductCheck, check_mask_product, mask_product
from ._plots import decay_figure, effect_of_relu_figure, plot_spectra
from ._spectra import JacobianSpectra, LayerSpectrum, estimate_bytes, spectra

__all__ = ["DEFAULT_MAX_BYTES", "JacobianSpectra", "LayerLemma", "LayerSpectrum", "LemmaCheck",
           "MaskProductCheck", "Output", "check_mask_product", "decay_figure", "effect_of_relu_figure",
           "estimate_bytes", "jacobians", "lemma_check", "lemma_checks", "mask_product", "outputs",
           "plot_spectra", "spectra"]
