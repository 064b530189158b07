"""Random-like weights: entry statistics, Marchenko–Pastur spectra, tails, conv operators.

`analyze(model)` tests, layer by layer, whether trained weights look like an i.i.d.
Gaussian random matrix (the hypothesis of Arora et al. 2015), and tells a few spikes
above the MP edge apart from a heavy-tailed (power-law) bulk.
"""

from ._analyze import (
                       ANALYSED_KINDS,
                       LayerSpectrum,
                       SpectrumResult,
                       analyze,
                       analyze_matrix,
                       reinitialise,
                       weight_matrix,
)
from ._conv import ConvSpectrum, circular_conv_singular_values, conv_singular_values
from ._mp import (
                       MPFit,
                       fit_mp,
                       fit_sigma2,
                       ks_to_mp,
                       mp_cdf,
                       mp_density,
                       mp_edges,
                       mp_quantile,
                       tracy_widom1_cdf,
                       tracy_widom1_quantile,
                       tw_threshold,
)
from ._powerlaw import PowerLawFit, fit_power_law
from ._stats import EntryStats, entry_stats
from ._verdict import LABELS, Verdict, VerdictRules, judge, ks_noise_level, outlier_gap, spike_cap

__all__ = ["ANALYSED_KINDS", "ConvSpectrum", "EntryStats", "LABELS", "LayerSpectrum", "MPFit", "PowerLawFit",
           "SpectrumResult", "Verdict", "VerdictRules", "analyze", "analyze_matrix",
           "circular_conv_singular_values", "conv_singular_values", "entry_stats", "fit_mp",
           "fit_power_law", "fit_sigma2", "judge", "ks_noise_level", "ks_to_mp", "mp_cdf", "mp_density",
           "mp_edges", "mp_quantile", "outlier_gap", "reinitialise", "spike_cap", "tracy_widom1_cdf",
           "tracy_widom1_quantile", "tw_threshold", "weight_matrix"]
