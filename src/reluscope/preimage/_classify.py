"""Classify the pre-image of one ReLU layer's output: singleton, compact or unbounded.

For `y = ReLU(W x + b)` with W (m x n), split the rows at the sample x by the sign of
the pre-activation `z = W x + b`:

- P (z > 0): equalities `W_P x' + b_P = y_P`;
- Z (z <= 0, output 0): inequalities `W_Z x' + b_Z <= 0`, of which the *tight* rows
  T (z = 0 within `tol.zero`) hold with equality at x.

With N an orthonormal basis of `null(W_P)` (d = n - rank W_P) the pre-image is
`{x + N w : M w <= -z_Z}`, `M = W_Z N`. Its recession cone is `{w : M w <= 0}`, so it
is bounded iff M is omnidirectional; it is the single point x iff `d = 0`, or the
tight rows `W_T N` are omnidirectional (the uniqueness theorem of Behrmann et al.:
the rows tight at x are omnidirectional *for the point*).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import ShapeError
from ._omni import OmniResult, is_omnidirectional
from ._tol import Tolerances, band_condition, numerical_rank, triangular_full_rank

KINDS = ("singleton", "compact", "unbounded", "degenerate")


@dataclass(frozen=True)
class PreimageResult:
    """The pre-image of `ReLU(W x + b)` at one sample x.

    Attributes:
        kind: `singleton`, `compact` (a polytope with more than one point), `unbounded`
            or `degenerate` (the deciding quantity, a singular value or an LP margin, is
            closer to zero than float64 data can certify; `condition` says how close).
        n_positive: number of positive outputs |P|.
        n_tight: number of pre-activations that are zero within `tol.zero` (tight rows).
        rank: rank of W_P (None when its rank is degenerate).
        null_dim: d = n - rank(W_P), the dimension of the equality system's solution set.
        reason: how the kind was decided (`rank`, `tight rows omnidirectional`, ...).
        method: what decided omnidirectionality (`rank`, `search`, `lp`), or `rank` alone.
        status: solver status (or what made the case degenerate).
        lp_value: `k * t*` of the LP when one ran.
        certificate_kind: `lambda` (lambda > 0, `M^T lambda = 0`, over the rows of Z),
            `direction` (a unit v in input space with `W_P v = 0`, `W_Z v <= 0`: the
            pre-image contains the ray x + s v) or None.
        certificate: the vector itself.
        exact_signs: pre-activations too close to zero for the floating-point test (in
            the band above `tol.zero`) whose sign was decided in exact rational arithmetic.
        z_margin: for those, the smallest `|z_i|` relative to the size of its terms.
        condition: for a degenerate case, the condition number of the decision (the
            reference size over the value in the tolerance band); None otherwise.
        seconds: wall time.
    """

    kind: str
    n_positive: int
    n_tight: int
    rank: int | None
    null_dim: int | None
    reason: str
    method: str = "rank"
    status: str = "not needed"
    lp_value: float | None = None
    certificate_kind: str | None = None
    certificate: np.ndarray | None = None
    exact_signs: int = 0
    z_margin: float | None = None
    condition: float | None = None
    seconds: float = 0.0

    def to_dict(self, certificate: bool = False) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "certificate"}
        if certificate:
            out["certificate"] = None if self.certificate is None else self.certificate.tolist()
        return out


def _as_float64(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().double().numpy()
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ShapeError(f"{name} has NaN or infinite entries; check the model weights and the input")
    return a


def check_layer(W, b, x=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """W (m, n), b (m,), x (n,) as float64 arrays, or a ShapeError naming the mismatch."""
    W, b = _as_float64(W, "W"), _as_float64(b, "b").reshape(-1)
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ShapeError(f"W must be a non-empty matrix (m, n), got shape {W.shape}")
    if b.shape[0] != W.shape[0]:
        raise ShapeError(f"b has {b.shape[0]} entries but W has {W.shape[0]} rows; they must match")
    if x is None:
        return W, b, None
    x = _as_float64(x, "x")
    if x.size != W.shape[1]:
        raise ShapeError(f"x has {x.size} entries but W has {W.shape[1]} columns; flatten x to (n,)")
    return W, b, x.reshape(-1)


def classify(W, b, x, tol: Tolerances = Tolerances(), *, search: bool = True) -> PreimageResult:
    """Classify the pre-image of `ReLU(W x + b)` at the sample x.

    Arguments:
        W: weight (m, n), NumPy array or tensor (computed in float64).
        b: bias (m,).
        x: the sample (n,) (any shape with n entries).
        tol: the stated tolerances (zero pre-activations, ranks, LP optimum).
        search: use the cheap certificate searches before any LP.

    Returns:
        A `PreimageResult`; `kind="degenerate"` (with its condition number) when a decision
        falls inside a tolerance band, closer to zero than the data's precision certifies.

    >>> W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    >>> classify(W, np.zeros(3), np.array([1.0, 2.0])).kind
    'singleton'
    >>> classify(W, np.array([0.0, -5.0, 0.0]), np.array([1.0, 2.0])).kind  # y = (1, 0, 0)
    'compact'
    >>> classify(W[:2], np.array([0.0, -5.0]), np.array([1.0, 2.0])).kind
    'unbounded'
    """
    start = time.perf_counter()
    W, b, x = check_layer(W, b, x)
    res = _classify(W, b, x, tol, search)
    return PreimageResult(**{**res.__dict__, "seconds": time.perf_counter() - start})


def _classify(W, b, x, tol: Tolerances, search: bool) -> PreimageResult:
    m, n = W.shape
    z = W @ x + b
    scale = np.abs(W) @ np.abs(x) + np.abs(b)  # size of the terms: rounding is relative to it
    P, T, exact = split_rows(z, scale, tol, lambda rows: exact_signs(W[rows], b[rows], x))
    n_pos, n_tight = int(P.sum()), int(T.sum())
    rank, N, condition = _null_space(W[P], n, tol, ref=float(np.linalg.norm(W, axis=1).max()))
    if condition is not None:
        return degenerate_rank(n_pos, n_tight, condition, exact)
    if rank == n:
        return PreimageResult("singleton", n_pos, n_tight, rank, 0, "rank: active rows span the input",
                              **exact)
    return decide_null_space(W, P, T, rank, N, float(np.linalg.norm(W, axis=1).max()), tol, search, exact)


def split_rows(z: np.ndarray, scale: np.ndarray, tol: Tolerances,
               signs_of) -> tuple[np.ndarray, np.ndarray, dict]:
    """The positive rows P and the tight rows T of `z = W x + b` (`scale` the size of each
    row's terms), and the exact-sign fields of the result.

    A pre-activation in the band above `tol.zero` is too close to zero for the floating-point
    test; the data are exact binary numbers, so its sign is decided exactly by
    `signs_of(rows)` (rational arithmetic, `exact_signs`).
    """
    lo = tol.zero * scale
    az = np.abs(z)
    P, T = z > lo, az <= lo
    band = np.flatnonzero((az > lo) & (az <= tol.band * lo))
    exact = dict(exact_signs=len(band), z_margin=None)
    if len(band):
        signs = signs_of(band)
        P[band], T[band] = signs > 0, signs == 0
        exact["z_margin"] = float((az[band] / scale[band]).min())
    return P, T, exact


def degenerate_rank(n_pos: int, n_tight: int, condition: float, exact: dict) -> PreimageResult:
    """The result when the rank of the active rows falls in the tolerance band."""
    return PreimageResult("degenerate", n_pos, n_tight, None, None,
                          "rank of the active rows inside the tolerance band",
                          status="rank test inside the tolerance band", condition=condition, **exact)


def decide_null_space(W, P, T, rank: int, N, row_scale: float, tol: Tolerances, search: bool,
                      exact: dict) -> PreimageResult:
    """The kind once `N` (n x d, d > 0) spans null(W_P): bounded iff `W_Z N` is omnidirectional,
    a single point iff the tight rows `W_T N` are. W may be dense or a SciPy sparse matrix;
    `row_scale` is its largest row norm; `exact` the exact-sign fields of the result."""
    n_pos, n_tight = int(P.sum()), int(T.sum())
    d = N.shape[1]
    Zrows = ~P
    M = W[Zrows] @ N
    omni = is_omnidirectional(M, tol, row_scale=row_scale, search=search)
    base = dict(n_positive=n_pos, n_tight=n_tight, rank=rank, null_dim=d, **exact)
    if omni.omnidirectional is None:
        return _result("degenerate", "omnidirectionality of W_Z N inside the tolerance band", omni, base)
    if not omni.omnidirectional:
        return _result("unbounded", "W_Z N is not omnidirectional", omni, base,
                       "direction", N @ omni.direction)
    if n_tight:
        tight = is_omnidirectional(W[T] @ N, tol, row_scale=row_scale, search=search)
        if tight.omnidirectional is None:
            return _result("degenerate", "bounded; omnidirectionality of the tight rows inside the "
                           "tolerance band", tight, base)
        if tight.omnidirectional:
            lam = np.zeros(int(Zrows.sum()))
            lam[T[Zrows]] = tight.lam
            return _result("singleton", "tight rows omnidirectional for the point", tight, base,
                           "lambda", lam)
    return _result("compact", "W_Z N is omnidirectional", omni, base, "lambda", omni.lam)


def exact_signs(W: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The exact signs (-1, 0, 1) of `W x + b`, every float read as the rational it is.

    >>> W = np.array([[1e16, 1.0, -1e16]])  # in floating point W @ 1 = 0
    >>> (W @ np.ones(3)).tolist(), exact_signs(W, np.zeros(1), np.ones(3)).tolist()
    ([0.0], [1])
    """
    xs = [Fraction(v) for v in x.tolist()]
    out = []
    for row, bias in zip(W.tolist(), b.tolist()):
        total = Fraction(bias) + sum(Fraction(w) * v for w, v in zip(row, xs) if w and v)
        out.append((total > 0) - (total < 0))
    return np.array(out, dtype=int)


def _result(kind, reason, omni: OmniResult, base, cert_kind=None, cert=None) -> PreimageResult:
    if cert_kind == "direction":
        cert = cert / np.linalg.norm(cert)
    return PreimageResult(kind, reason=reason, method=omni.method, status=omni.status,
                          lp_value=omni.lp_value, certificate_kind=cert_kind, certificate=cert,
                          condition=omni.condition, **base)


def _null_space(A: np.ndarray, n: int, tol: Tolerances, ref: float) -> tuple[int, np.ndarray, float | None]:
    """Rank of A (p x n), an orthonormal basis (n x d) of its null space, and the condition
    number of the rank decision when it fell in the tolerance band (None when decided).

    Singular values are compared with `tol.rank * max(ref, sigma_max)`, ref being the largest
    row norm of the whole layer (so the test does not depend on which rows are active).
    Fast paths: a QR factorisation and the cheap triangular test `triangular_full_rank`
    settle full (row or column) rank; only inconclusive cases pay for an SVD.
    """
    p = A.shape[0]
    if p == 0:
        return 0, np.eye(n), None
    if p >= n:
        R = np.linalg.qr(A, mode="r")
        if triangular_full_rank(R[:n], tol, ref) is not None:
            return n, np.zeros((n, 0)), None
    else:
        # null(A) = span Q[:, p:] from a complete QR of A^T, whenever A has full row rank.
        Q, R = np.linalg.qr(A.T, mode="complete")
        if triangular_full_rank(R[:p], tol, ref) is not None:
            return p, Q[:, p:], None
    _, s, Vt = np.linalg.svd(A, full_matrices=True)
    scale = max(ref, float(s[0]))
    rank, decided = numerical_rank(s, tol, scale=scale)
    return rank, Vt[rank:].T, None if decided else band_condition(s, tol, scale)
