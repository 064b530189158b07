"""Stated tolerances and the numerically careful rank decision they drive."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerances:
    """Every threshold a pre-image decision uses, in one place.

    Each decision has a *zero* threshold and a *band* above it: a value below `x` counts
    as zero, one above `band * x` as nonzero. A value in between is closer to zero than
    float64 data can certify: the result is "degenerate" (with its condition number)
    instead of a guess.

    Attributes:
        zero: a pre-activation z_i = W_i x + b_i is exactly zero when
            `|z_i| <= zero * (|W_i| @ |x| + |b_i|)` (relative to the size of its terms).
        rank: a singular value is zero when `sigma <= rank * sigma_max`.
        band: width of the band (a factor, see above).
        lp: the LP optimum `k * t*` (scaled to [-inf, 1]) means "not omnidirectional" below
            `lp` and "omnidirectional" above `band * lp`.
        cert: a direction z certifies `M z <= 0` when every `(M z)_i <= cert * |M_i| |z|`.
    """

    zero: float = 1e-9
    rank: float = 1e-9
    band: float = 1e3
    lp: float = 1e-9
    cert: float = 1e-10

    def to_dict(self) -> dict:
        return asdict(self)


def numerical_rank(s: np.ndarray, tol: Tolerances, scale: float | None = None) -> tuple[int, bool]:
    """Rank from singular values `s` (descending), and whether it is decided.

    Arguments:
        s: singular values, largest first.
        tol: `tol.rank` is the zero threshold relative to `scale`, `tol.band` the band.
        scale: reference size (default: the largest singular value).

    Returns:
        `(rank, decided)`: rank counts the values above the zero threshold; decided is
        False when some value lies inside the band.

    >>> numerical_rank(np.array([2.0, 1.0, 1e-14]), Tolerances())
    (2, True)
    >>> numerical_rank(np.array([2.0, 1.0, 1e-8]), Tolerances())
    (3, False)
    """
    if s.size == 0:
        return 0, True
    ref = float(s[0]) if scale is None else float(scale)
    if ref == 0.0:
        return 0, True
    lo = tol.rank * ref
    rank = int(np.count_nonzero(s > lo))
    ambiguous = bool(np.any((s > lo) & (s <= tol.band * lo)))
    return rank, not ambiguous


def band_condition(s: np.ndarray, tol: Tolerances, scale: float | None = None) -> float:
    """The condition number of a rank decision that fell in the band: the reference size
    over the smallest singular value inside the band (how far from singular it is).

    >>> band_condition(np.array([2.0, 1.0, 1e-8]), Tolerances())
    200000000.0
    """
    ref = float(s[0]) if scale is None else float(scale)
    lo = tol.rank * ref
    inside = s[(s > lo) & (s <= tol.band * lo)]
    return ref / float(inside.min()) if inside.size else float("inf")


def triangular_full_rank(R: np.ndarray, tol: Tolerances, scale: float = 0.0) -> np.ndarray | None:
    """A cheap, sufficient test that a square triangular R has full rank, outside the band.

    Uses `sigma_min >= 1 / |R^-1|_F` and `sigma_max <= |R|_F`: when
    `1 / |R^-1|_F > band * rank * max(|R|_F, scale)` every singular value is clearly nonzero.
    A third of the work of the singular values; inconclusive cases return None (use an SVD).

    Returns:
        `R^-1` when full rank is certain, else None.

    >>> triangular_full_rank(np.array([[2.0, 1.0], [0.0, 1.0]]), Tolerances()).round(3).tolist()
    [[0.5, -0.5], [0.0, 1.0]]
    >>> triangular_full_rank(np.array([[1.0, 1.0], [0.0, 1e-12]]), Tolerances()) is None
    True
    """
    from scipy.linalg import solve_triangular

    n = R.shape[0]
    if n == 0 or np.any(np.diag(R) == 0):
        return None
    with np.errstate(all="ignore"):
        inv = solve_triangular(R, np.eye(n), lower=False, check_finite=False)
        norm_inv = float(np.linalg.norm(inv))
    if not np.isfinite(norm_inv) or norm_inv == 0.0:
        return None
    top = max(float(np.linalg.norm(R)), float(scale))
    return inv if 1.0 / norm_inv > tol.band * tol.rank * top else None
