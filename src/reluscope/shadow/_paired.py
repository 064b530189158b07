"""Paired verdicts on SHADOW: does an arm beat its reference over the same seeds?

Arms of one seed share the labelled subset, the initial weights and the batch order
(`shadow_experiment` seeds them alike), so the effect of SHADOW is measured on paired
differences `err(arm, seed) - err(reference, seed)`: "helps" / "hurts" when the mean
difference exceeds `se_multiple` standard errors, "no clear effect" otherwise, and
undecided with fewer than `MIN_SEEDS` seeds.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .._display import Tabular

MIN_SEEDS = 3  # fewer seeds give no usable standard error: claims stay undecided
PAIRS = (("shadow", "baseline"), ("dropout+shadow", "dropout"))


@dataclass(frozen=True)
class Comparison(Tabular):
    """`arm` minus `reference` final test error at one budget, paired by seed (negative: better)."""

    data: str
    budget: int
    arm: str
    reference: str
    mean_diff: float
    se: float
    n: int
    verdict: str  # "helps", "hurts", "no clear effect" or "undecided (n seeds)"

    def to_dict(self) -> dict:
        return dict(data=self.data, budget=self.budget, arm=self.arm, reference=self.reference,
                    mean_diff=self.mean_diff, se=self.se, n=self.n, verdict=self.verdict)


def paired_difference(errors, reference, se_multiple: float = 2.0,
                      min_seeds: int = MIN_SEEDS) -> tuple[float, float, str]:
    """Mean and standard error of paired differences, and the verdict.

    >>> paired_difference([0.10, 0.11, 0.09], [0.20, 0.20, 0.20])[2]
    'helps'
    >>> paired_difference([0.10, 0.30, 0.20], [0.20, 0.20, 0.20])[2]
    'no clear effect'
    """
    if len(errors) != len(reference) or not errors:
        raise ValueError("paired errors need the same, nonzero number of seeds")
    d = [a - b for a, b in zip(errors, reference)]
    mean = statistics.fmean(d)
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    if len(d) < min_seeds:
        return mean, se, f"undecided ({len(d)} seeds)"
    if mean != 0 and abs(mean) > se_multiple * se:
        return mean, se, "helps" if mean < 0 else "hurts"
    return mean, se, "no clear effect"


def paired_comparisons(res, data: str = "", se_multiple: float = 2.0,
                       pairs=PAIRS) -> tuple[Comparison, ...]:
    """SHADOW vs baseline and dropout+SHADOW vs dropout at every budget of `res`."""
    out = []
    for budget in sorted({a.budget for a in res.arms}):
        for arm, ref in pairs:
            try:
                a, r = res.arm(arm, budget), res.arm(ref, budget)
            except KeyError:
                continue
            mean, se, verdict = paired_difference(a.test_errors, r.test_errors, se_multiple)
            out.append(Comparison(data or res.config.data, budget, arm, ref, mean, se, len(a.test_errors),
                                  verdict))
    return tuple(out)
