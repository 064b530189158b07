"""Per-layer verdict: random-like, spiked, heavy-tailed, non-MP bulk, too small.

The rules, with the statistics behind each (all thresholds are `VerdictRules` fields):

- outliers: eigenvalues above the MP edge plus the Tracy–Widom margin (false-alarm
  rate `false_alarm` per matrix for pure noise), with a variance fitted on quantiles so
  that spikes do not inflate it (`_mp.fit_mp`).
- heavy tail: the eigenvalues beyond the edge form a continuum rather than a few
  spikes (more than `spike_cap = max(3, sqrt(p))` of them) AND the power-law tail
  exponent is significantly below 4 (`alpha + 2 se < 4`; alpha < 4 is the
  Martin–Mahoney heavy/fat-tail regime, i.e. entry tails without a finite 4th moment).
  Exception: when the bulk fits MP and the smallest outlier stands clear of the
  threshold (by `min_gap` times the Tracy–Widom margin, `threshold - edge`), the
  outliers are separated spikes however many there are (e.g. one per class).
- MP bulk: the KS distance of the bulk (outliers removed) to MP is at most
  `ks_factor * (1 + ln p) / p`; Gaussian eigenvalues are rigid, so their KS distance
  is O(log p / p), far below the 1/sqrt(p) of independent samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._display import Tabular
from ._mp import MPFit
from ._powerlaw import PowerLawFit
from ._stats import EntryStats

LABELS = ("random-like", "spiked", "heavy-tailed", "non-MP bulk", "too small")


@dataclass(frozen=True)
class VerdictRules:
    """Thresholds of `judge` (see the module docstring)."""

    min_side: int = 16
    alpha_heavy: float = 4.0
    alpha_se_factor: float = 2.0
    ks_factor: float = 1.0
    min_spike_cap: int = 3
    min_gap: float = 1.5


@dataclass(frozen=True)
class Verdict(Tabular):
    """A layer's label and the facts behind it.

    Attributes:
        label: one of `LABELS`.
        spiked: a few outliers above the MP edge (not a heavy tail).
        heavy_tailed: power-law tail beyond the MP edge.
        bulk_mp: the bulk's KS distance to MP is at the sampling-noise level.
        entries_gaussian: neither KS nor AD rejects Gaussian entries at 1%.
        reasons: one sentence per fact.
    """

    label: str
    spiked: bool
    heavy_tailed: bool
    bulk_mp: bool
    entries_gaussian: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["reasons"] = list(self.reasons)
        return d


def ks_noise_level(p: int, factor: float = 1.0) -> float:
    """Largest KS distance to MP expected from a pure Gaussian matrix with `p` eigenvalues."""
    return factor * (1.0 + math.log(p)) / p


def spike_cap(p: int, rules: VerdictRules = VerdictRules()) -> int:
    """Most outliers still read as "a few spikes" rather than a tail."""
    return max(rules.min_spike_cap, math.ceil(math.sqrt(p)))


def outlier_gap(mp: MPFit) -> float:
    """How far the smallest outlier stands above the threshold, in Tracy–Widom margins
    (`threshold - edge`); NaN without outliers. A power-law tail crosses the threshold
    continuously (gap near 0); spikes sit apart from the bulk."""
    if not mp.outliers or mp.threshold <= mp.edge:
        return float("nan")
    return (min(mp.outliers) - mp.threshold) / (mp.threshold - mp.edge)


def judge(mp: MPFit, tail: PowerLawFit, entries: EntryStats, rules: VerdictRules = VerdictRules()) -> Verdict:
    """Label one weight matrix from its MP fit, power-law tail fit and entry statistics."""
    p, k = mp.p, mp.n_outliers
    noise = ks_noise_level(p, rules.ks_factor)
    bulk_mp = bool(mp.ks_bulk <= noise)
    cap = spike_cap(p, rules)
    many = k > cap
    upper = tail.alpha + rules.alpha_se_factor * tail.alpha_se
    gap = outlier_gap(mp)
    separated = bool(bulk_mp and gap >= rules.min_gap)
    heavy = bool(many and not separated and math.isfinite(upper) and upper < rules.alpha_heavy)
    reasons = [
        f"{k} eigenvalue(s) above the MP edge + Tracy-Widom margin "
        f"(threshold {mp.threshold:.4g}, edge {mp.edge:.4g}, fitted variance {mp.sigma2:.4g})",
        f"bulk KS distance to MP {mp.ks_bulk:.3g} vs noise level {noise:.3g}",
        f"power-law tail alpha {tail.alpha:.3g} +- {tail.alpha_se:.2g} "
        f"over the top {tail.n_tail} eigenvalues",
        f"entries: excess kurtosis {entries.excess_kurtosis:.3g}, KS {entries.ks:.3g} "
        f"(1% critical {entries.ks_critical:.3g}), AD {entries.ad:.3g} (critical {entries.ad_critical:.3g})",
    ]
    if p < rules.min_side:
        label = "too small"
        reasons.insert(0, f"only {p} < {rules.min_side} singular values: too few to tell spikes, "
                          "tails and MP apart; the numbers below are descriptive")
    elif heavy:
        label = "heavy-tailed"
        reasons.insert(0, f"{k} eigenvalues beyond the edge ({k} > {cap}, so a tail, not spikes) "
                          f"with alpha + {rules.alpha_se_factor:g} se = {upper:.3g} < {rules.alpha_heavy:g}")
    elif many and separated:
        label = "spiked"
        reasons.insert(0, f"{k} spikes above the edge, separated from an MP bulk (the smallest is "
                          f"{gap:.2g} >= {rules.min_gap:g} Tracy-Widom margins above the threshold)")
    elif many:
        label = "non-MP bulk"
        tail_txt = (f"alpha + {rules.alpha_se_factor:g} se = {upper:.3g} >= {rules.alpha_heavy:g}"
                    if math.isfinite(upper) else "no power-law fit")
        reasons.insert(0, f"{k} eigenvalues beyond the edge ({k} > {cap}) but no power-law tail "
                          f"({tail_txt}): the bulk is wider than MP")
    elif k > 0:
        label = "spiked"
        reasons.insert(0, f"{k} isolated spike(s) above the edge (largest eigenvalue {max(mp.outliers):.4g} "
                          f"> threshold {mp.threshold:.4g}; up to {cap} count as spikes); bulk "
                          + (f"fits MP (KS {mp.ks_bulk:.3g} <= noise level {noise:.3g})" if bulk_mp
                             else f"deviates from MP (KS {mp.ks_bulk:.3g} > noise level {noise:.3g})"))
    elif not bulk_mp:
        label = "non-MP bulk"
        reasons.insert(0, f"no outliers, but the bulk's KS distance to MP {mp.ks_bulk:.3g} > noise level "
                          f"{noise:.3g}: its shape deviates from MP beyond sampling noise")
    else:
        label = "random-like"
        reasons.insert(0, "no outliers and the bulk fits MP at the sampling-noise level")
    spiked = bool(label == "spiked")
    return Verdict(label, spiked, heavy, bulk_mp, bool(entries.gaussian), tuple(reasons))
