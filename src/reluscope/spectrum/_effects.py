"""Effect sizes of random-likeness: how much of a matrix looks random, not only whether a test rejects.

With 16k-65k entries per matrix, KS and Anderson–Darling reject any trained layer, and one spike
makes a spectrum "spiked"; the claim of Arora et al. is about the bulk (most directions look
random). The measures here say how large the deviation is:

- `bulk_fraction`: share of the eigenvalues at or below the MP threshold (edge + Tracy–Widom margin);
  the bulk claim needs `MIN_BULK_FRACTION` (0.9, see its comment for why).
- `outlier_energy`: share of the spectral mass `||W||_F^2 = sum s_i^2` held by the outliers.
- `excess_kurtosis_ci`: the entries' excess kurtosis with a seeded bootstrap interval
  (Gaussian 0, uniform -1.2).
- `shuffled_baseline`: the outliers left after permuting the entries (WeightWatcher's `randomize`):
  a spike that survives shuffling comes from the entry distribution (a non-zero mean, heavy
  tails), not from learned structure.
- `porter_thomas`: the components of a random matrix's singular vectors are Porter–Thomas
  distributed: for a unit vector uniform on the sphere in `d` dimensions, `u_j^2 ~ Beta(1/2, (d-1)/2)`
  exactly (`d u_j^2 -> chi^2(1)`); pooled KS of the probability-integral transforms against U(0, 1).
- `entries_vs_uniform`, `entries_vs_initial`: the entries against the right null, PyTorch's default
  initialisation `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (excess kurtosis -1.2, so an untrained layer
  already fails a Gaussian KS test), or two-sample against the initial entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._display import Tabular
from ._blas import one_blas_thread
from ._mp import DEFAULT_FALSE_ALARM, MPFit, fit_mp

KS_1PCT = 1.6276  # asymptotic 1% critical value of sqrt(n) * KS (Kolmogorov distribution)
N_VECTORS = 10  # singular vectors per Porter–Thomas test

# "The bulk is random-like" (the report's claim) needs at least this `bulk_fraction`. Why 0.9:
# - A Gaussian matrix passes at every judged size. Its bulk fraction is exactly 1 unless the Tracy–Widom
#   margin raises a false alarm (probability `false_alarm`, 1e-3 per matrix by design). Measured over 400
#   Gaussian draws (40 for the 4096-wide ones) at the shapes of the digits/MNIST MLPs, the CIFAR CNN and
#   AlexNet, 16x16 to 512x4096: mean >= 0.9992, at most one false outlier in any draw (0 to 1.25% of the
#   draws, the most at 16x16), so its smallest value is 1 - 1/p >= 1 - 1/16 = 0.9375 for the smallest
#   judged side p = 16 (`VerdictRules.min_side`): no finite-size edge effect comes near 0.9.
# - "Most directions look random": up to 10% of the directions may be learned spikes. `r` spikes above the
#   BBP threshold leave `1 - r/p` inside the bulk, so the claim fails when `r > p / 10`. Trained nets
#   grow about one spike per class (digits MLPs, 10 classes: 9-10 learned spikes per hidden layer), so it
#   holds for layers with `p >= 10 x classes` (measured 0.96 at 256x256, 0.93 at 128x128) and fails for
#   narrower ones (0.86 for the 256x64 input layer of the digits MLP 256-256).
MIN_BULK_FRACTION = 0.9


def bulk_fraction(mp: MPFit) -> float:
    """Share of the eigenvalues inside the MP bulk (at or below the threshold): `1 - k / p`."""
    return 1.0 - mp.n_outliers / mp.p if mp.p else float("nan")


def outlier_energy(singular_values, n_outliers: int) -> float:
    """Share of `||W||_F^2 = sum s_i^2` held by the `n_outliers` largest singular values.

    >>> outlier_energy(np.array([3.0, 1.0]), 1)
    0.9
    """
    lam = np.sort(np.asarray(singular_values, dtype=float) ** 2)[::-1]
    total = float(lam.sum())
    return float(lam[:n_outliers].sum() / total) if total > 0 else float("nan")


@dataclass(frozen=True)
class KurtosisCI(Tabular):
    """Excess kurtosis with a bootstrap percentile interval (`level`, `n_boot` resamples).

    With more than `max_entries` entries the resamples are `m`-out-of-`n` (size `m = max_entries`)
    and their spread is rescaled by `sqrt(m / n)`.
    """

    estimate: float
    low: float
    high: float
    level: float
    n_boot: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _kurtosis(x: np.ndarray, axis=-1) -> np.ndarray:
    z = x - x.mean(axis=axis, keepdims=True)
    m2 = np.mean(z**2, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(z**4, axis=axis) / m2**2 - 3.0


def excess_kurtosis_ci(values, level: float = 0.95, n_boot: int = 200, seed: int = 0,
                       max_entries: int = 1 << 14) -> KurtosisCI:
    """The excess kurtosis of `values` (flattened) and its bootstrap interval (seeded).

    >>> ci = excess_kurtosis_ci(np.random.default_rng(0).uniform(-1, 1, 20000))
    >>> round(ci.estimate, 1), ci.low < -1.2 < ci.high
    (-1.2, True)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n < 4 or np.ptp(x) == 0:
        nan = float("nan")
        return KurtosisCI(nan, nan, nan, level, 0)
    est = float(_kurtosis(x))
    rng = np.random.default_rng(seed)
    m = min(n, max_entries)
    boots = np.empty(n_boot)
    chunk = max(1, (1 << 22) // m)  # resamples per batch: ~32 MB of float64
    for i in range(0, n_boot, chunk):
        b = min(chunk, n_boot - i)
        boots[i:i + b] = _kurtosis(x[rng.integers(0, n, size=(b, m))])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    scale = math.sqrt(m / n)
    return KurtosisCI(est, float(est + scale * (lo - est)), float(est + scale * (hi - est)), level, n_boot)


@dataclass(frozen=True)
class ShuffledBaseline(Tabular):
    """The MP fit of the matrix with its entries permuted.

    Attributes:
        n_outliers: outliers of the shuffled matrix (those of the entry distribution).
        outlier_energy: their share of `||W||_F^2`.
        ks_bulk: the shuffled bulk's KS distance to MP.
        learned_outliers: outliers of the matrix beyond those of its shuffle (`max(0, k - k_shuffled)`).
    """

    n_outliers: int
    outlier_energy: float
    ks_bulk: float
    learned_outliers: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def shuffled_baseline(w, n_outliers: int = 0, seed: int = 0,
                      false_alarm: float = DEFAULT_FALSE_ALARM) -> ShuffledBaseline:
    """Permute the entries of `w` (seeded), fit MP and count its outliers; `n_outliers` are the
    original matrix's, for `learned_outliers`.

    >>> w = np.random.default_rng(0).standard_normal((300, 100))
    >>> shuffled_baseline(w).n_outliers
    0
    """
    from ._analyze import _singular_values

    w = np.asarray(w, dtype=np.float64)
    flat = np.random.default_rng(seed).permutation(w.ravel())
    sv = _singular_values(flat.reshape(w.shape))
    n = max(w.shape)
    mp = fit_mp(sv**2 / n, n, false_alarm)
    return ShuffledBaseline(mp.n_outliers, outlier_energy(sv, mp.n_outliers), mp.ks_bulk,
                            max(0, n_outliers - mp.n_outliers))


@dataclass(frozen=True)
class PorterThomas(Tabular):
    """Pooled test of singular-vector components against Porter–Thomas (see the module docstring).

    Attributes:
        ks: KS distance of the transformed components to U(0, 1).
        p_value: its p-value (components treated as independent).
        critical: the 1% critical value of `ks`.
        n_vectors, n_components: vectors and components pooled.
        rejected: `p_value < 0.01`.
    """

    ks: float
    p_value: float
    critical: float
    n_vectors: int
    n_components: int
    rejected: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def porter_thomas(*vectors) -> PorterThomas:
    """Test that the columns of each `d x k` array (unit vectors) look uniform on their sphere.

    Each squared component is mapped through the exact Beta(1/2, (d-1)/2) cdf of its array's `d`;
    the pooled values are tested against U(0, 1).

    >>> u = np.linalg.qr(np.random.default_rng(0).standard_normal((500, 10)))[0]
    >>> porter_thomas(u).rejected
    False
    """
    from scipy import special, stats

    pit, k = [], 0
    for v in vectors:
        v = np.asarray(v, dtype=np.float64)
        v = v[:, None] if v.ndim == 1 else v
        d = v.shape[0]
        if d < 2 or v.shape[1] == 0:
            continue
        v = v / np.linalg.norm(v, axis=0, keepdims=True)
        pit.append(special.betainc(0.5, (d - 1) / 2, np.clip(v**2, 0.0, 1.0)).ravel())
        k += v.shape[1]
    if not pit:
        nan = float("nan")
        return PorterThomas(nan, nan, nan, 0, 0, False)
    x = np.concatenate(pit)
    res = stats.kstest(x, "uniform")
    return PorterThomas(float(res.statistic), float(res.pvalue), KS_1PCT / math.sqrt(x.size), k, x.size,
                        bool(res.pvalue < 0.01))


def singular_vectors(w, indices) -> tuple[np.ndarray, np.ndarray]:
    """Left (`rows x k`) and right (`cols x k`) singular vectors of `w` at `indices` (descending order)."""
    with one_blas_thread():
        u, _, vt = np.linalg.svd(np.asarray(w, dtype=np.float64), full_matrices=False)
    idx = np.asarray(indices, dtype=int)
    return u[:, idx], vt[idx].T


def vector_indices(p: int, n_outliers: int, most: int = N_VECTORS) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the top `most` singular vectors, and of `most` spread evenly over the bulk
    (ranks `n_outliers .. p-1`)."""
    top = np.arange(min(most, p))
    bulk = np.unique(np.linspace(n_outliers, p - 1, min(most, max(p - n_outliers, 0))).round().astype(int))
    return top, bulk


@dataclass(frozen=True)
class EntryDistance(Tabular):
    """KS distance of a matrix's entries to a reference law or sample.

    Attributes:
        reference: what was compared with (e.g. `U(-0.0357, 0.0357)` or `initial entries`).
        ks: the KS distance (the effect size).
        critical: its 1% critical value (the sampling-noise level).
        p_value: the test's p-value.
        same: `ks <= critical` (not rejected at 1%).
    """

    reference: str
    ks: float
    critical: float
    p_value: float
    same: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def default_init_bound(fan_in: int) -> float:
    """Bound `b` of PyTorch's default weight init `U(-b, b)` for Linear/Conv:
    `kaiming_uniform_(a=sqrt(5))` gives `b = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in)`."""
    return 1.0 / math.sqrt(fan_in)


def entries_vs_uniform(values, bound: float) -> EntryDistance:
    """One-sample KS of the entries against `U(-bound, bound)`.

    >>> x = np.random.default_rng(0).uniform(-0.1, 0.1, 10000)
    >>> entries_vs_uniform(x, 0.1).same
    True
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).ravel()
    res = stats.kstest(x, "uniform", args=(-bound, 2 * bound))
    crit = KS_1PCT / math.sqrt(x.size)
    return EntryDistance(f"U(-{bound:.4g}, {bound:.4g})", float(res.statistic), crit, float(res.pvalue),
                         bool(res.statistic <= crit))


def entries_vs_initial(values, initial) -> EntryDistance:
    """Two-sample KS of the entries against the initial entries."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(initial, dtype=np.float64).ravel()
    res = stats.ks_2samp(x, y)
    crit = KS_1PCT * math.sqrt((x.size + y.size) / (x.size * y.size))
    return EntryDistance("initial entries", float(res.statistic), crit, float(res.pvalue),
                         bool(res.statistic <= crit))


@dataclass(frozen=True)
class EffectSizes(Tabular):
    """The effect sizes of one weight matrix (see the module docstring).

    Attributes:
        bulk_fraction: eigenvalues inside the MP bulk / all.
        outlier_energy: spectral mass of the outliers / `||W||_F^2`.
        ks_bulk_over_noise: the bulk's KS distance to MP over the Gaussian-matrix noise level.
        kurtosis: the entries' excess kurtosis and its bootstrap interval.
        shuffled: the entry-permuted matrix's outliers.
        porter_thomas_top: the top singular vectors (up to `N_VECTORS`, left and right pooled).
        porter_thomas_bulk: singular vectors spread over the bulk.
        vs_default_init: entries vs PyTorch's default init law (linear/conv layers), else None.
        vs_initial: entries vs the initial model's (when it is known), else None.
    """

    bulk_fraction: float
    outlier_energy: float
    ks_bulk_over_noise: float
    kurtosis: KurtosisCI
    shuffled: ShuffledBaseline
    porter_thomas_top: PorterThomas
    porter_thomas_bulk: PorterThomas
    vs_default_init: EntryDistance | None = None
    vs_initial: EntryDistance | None = None

    def to_dict(self) -> dict:
        return dict(bulk_fraction=self.bulk_fraction, outlier_energy=self.outlier_energy,
                    ks_bulk_over_noise=self.ks_bulk_over_noise, kurtosis=self.kurtosis.to_dict(),
                    shuffled=self.shuffled.to_dict(), porter_thomas_top=self.porter_thomas_top.to_dict(),
                    porter_thomas_bulk=self.porter_thomas_bulk.to_dict(),
                    vs_default_init=None if self.vs_default_init is None else self.vs_default_init.to_dict(),
                    vs_initial=None if self.vs_initial is None else self.vs_initial.to_dict())

    def columns(self) -> dict:
        """The flat table columns (NaN where a measure is absent)."""
        nan = float("nan")
        return dict(bulk_fraction=self.bulk_fraction, outlier_energy=self.outlier_energy,
                    ks_bulk_over_noise=self.ks_bulk_over_noise, kurtosis_low=self.kurtosis.low,
                    kurtosis_high=self.kurtosis.high, shuffled_spikes=self.shuffled.n_outliers,
                    learned_spikes=self.shuffled.learned_outliers, pt_top_ks=self.porter_thomas_top.ks,
                    pt_top_p=self.porter_thomas_top.p_value, pt_top_rejected=self.porter_thomas_top.rejected,
                    pt_bulk_ks=self.porter_thomas_bulk.ks, pt_bulk_p=self.porter_thomas_bulk.p_value,
                    pt_bulk_rejected=self.porter_thomas_bulk.rejected,
                    ks_default_init=nan if self.vs_default_init is None else self.vs_default_init.ks,
                    ks_default_init_crit=(nan if self.vs_default_init is None
                                          else self.vs_default_init.critical),
                    ks_initial=nan if self.vs_initial is None else self.vs_initial.ks,
                    ks_initial_crit=nan if self.vs_initial is None else self.vs_initial.critical)


def effect_sizes(w, singular_values, mp: MPFit, ks_noise: float, kind: str = "linear", seed: int = 0,
                 false_alarm: float = DEFAULT_FALSE_ALARM) -> EffectSizes:
    """All the effect sizes of the `rows x cols` matrix `w` given its spectrum and MP fit.

    `kind` "linear", "conv1d" or "conv2d": also the distance to PyTorch's default init law
    (fan-in = `cols`).
    """
    w = np.asarray(w, dtype=np.float64)
    k = mp.n_outliers
    top, bulk = vector_indices(mp.p, k)
    u, v = singular_vectors(w, np.concatenate([top, bulk]))
    nt = top.size
    default = (entries_vs_uniform(w, default_init_bound(w.shape[1]))
               if kind in ("linear", "conv1d", "conv2d") else None)
    return EffectSizes(
        bulk_fraction=bulk_fraction(mp), outlier_energy=outlier_energy(singular_values, k),
        ks_bulk_over_noise=mp.ks_bulk / ks_noise if ks_noise > 0 else float("nan"),
        kurtosis=excess_kurtosis_ci(w, seed=seed), shuffled=shuffled_baseline(w, k, seed, false_alarm),
        porter_thomas_top=porter_thomas(u[:, :nt], v[:, :nt]),
        porter_thomas_bulk=porter_thomas(u[:, nt:], v[:, nt:]), vs_default_init=default)
