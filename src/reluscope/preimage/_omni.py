"""Omnidirectionality of a matrix: exact shortcuts first, then one LP (HiGHS).

A matrix M (k x d) is *omnidirectional* when `M z <= 0` implies `z = 0`; equivalently
`0` lies in the interior of the convex hull of its rows; equivalently (Gordan/Stiemke)
`rank(M) = d` and some `lambda > 0` has `M^T lambda = 0`.

Both answers come with a certificate that is checked before it is returned:
`lambda > 0` with `M^T lambda = 0` (omnidirectional) or a direction `z != 0` with
`M z <= 0` (not omnidirectional). A case whose deciding quantity is closer to zero than
float64 data can certify is `None`, with its condition number.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ._tol import Tolerances, band_condition, numerical_rank, triangular_full_rank

_DIRECTION_STEPS = 60  # L-BFGS-B iterations of the direction search (unbounded certificate)
_LAMBDA_STEPS = 300  # L-BFGS-B iterations of the lambda search (omnidirectional certificate)


@dataclass(frozen=True)
class OmniResult:
    """The answer of `is_omnidirectional`.

    Attributes:
        omnidirectional: True, False, or None (degenerate: the deciding quantity lies in
            the tolerance band, closer to zero than float64 data can certify).
        method: what decided it: `trivial`, `rank`, `search` (a direction found without
            an LP), `lp` (the efficient LP) or `lp-naive`.
        status: a short human-readable status (the solver's model status for LPs).
        lp_value: `k * t*` of the LP, in [-inf, 1] (None when no LP ran).
        lam: `lambda > 0` with `M^T lambda = 0`, summing to 1 (when omnidirectional).
        direction: unit `z` with `M z <= 0` (when not omnidirectional).
        condition: when degenerate, the condition number of the decision: the reference
            size over the value in the band (a singular value or row norm of M, or `1 / k t*`
            of the LP), or the condition number of M when a certificate failed its check.
        seconds: wall time of the call.
    """

    omnidirectional: bool | None
    method: str
    status: str
    lp_value: float | None = None
    lam: np.ndarray | None = None
    direction: np.ndarray | None = None
    condition: float | None = None
    seconds: float = 0.0

    def to_dict(self, certificate: bool = False) -> dict:
        out = dict(omnidirectional=self.omnidirectional, method=self.method, status=self.status,
                   lp_value=self.lp_value, condition=self.condition, seconds=self.seconds)
        if certificate:
            out["lam"] = None if self.lam is None else self.lam.tolist()
            out["direction"] = None if self.direction is None else self.direction.tolist()
        return out


def is_omnidirectional(M, tol: Tolerances = Tolerances(), *, row_scale: float | None = None,
                       search: bool = True, naive: bool = False,
                       time_limit: float | None = None) -> OmniResult:
    """Decide whether `M z <= 0` forces `z = 0`.

    Arguments:
        M: array (k, d).
        tol: tolerances (rank of M, LP optimum, certificate check).
        row_scale: reference size below which a row counts as zero (`tol.rank * row_scale`);
            default the largest row norm. Zero rows constrain no direction and are dropped.
        search: try the cheap direction search before the LP.
        naive: solve the naive LP form (lambda >= t as k rows, scipy linprog) instead of the
            efficient one; for benchmarks and cross-checks.

    Returns:
        An `OmniResult` with a verified certificate, or `omnidirectional=None` (degenerate)
        with the decision's condition number.

    >>> is_omnidirectional([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]]).omnidirectional
    True
    >>> r = is_omnidirectional([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    >>> r.omnidirectional, r.direction.round(6).tolist()
    (False, [0.0, -1.0])
    """
    start = time.perf_counter()
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ShapeError(f"is_omnidirectional needs a 2-D matrix, got shape {M.shape}; reshape it to (k, d)")
    if not np.all(np.isfinite(M)):
        raise ShapeError("the matrix has NaN or infinite entries; check the weights it was built from")
    res = _decide(M, tol, row_scale, search, naive, time_limit)
    return OmniResult(**{**res.__dict__, "seconds": time.perf_counter() - start})


def _decide(M: np.ndarray, tol: Tolerances, row_scale, search: bool, naive: bool,
            time_limit: float | None) -> OmniResult:
    k, d = M.shape
    if d == 0:
        lam = np.full(k, 1.0 / k) if k else np.zeros(0)
        return OmniResult(True, "trivial", "no directions (d = 0)", lam=lam)
    norms = np.linalg.norm(M, axis=1)
    ref = float(norms.max(initial=0.0)) if row_scale is None else float(row_scale)
    zero_lo = tol.rank * ref
    in_band = (norms > zero_lo) & (norms <= tol.band * zero_lo)
    if np.any(in_band):
        return OmniResult(None, "rank", "a row is neither clearly zero nor clearly nonzero",
                          condition=ref / float(norms[in_band].min()))
    keep = norms > zero_lo
    if not np.any(keep):
        z = np.zeros(d)
        z[0] = 1.0
        return OmniResult(False, "trivial", "every row is zero", direction=z)
    Mk, nk = M[keep], norms[keep]
    Mn = Mk / nk[:, None]  # row scaling keeps the answer and conditions the problem
    if len(Mn) <= d:
        return _few_rows(Mn, Mk, tol)
    basis = _orthonormal_basis(Mn, Mk, tol)
    if isinstance(basis, OmniResult):
        return basis
    U, to_z = basis
    if search:
        zu = _search_direction(U)
        if zu is not None:
            return _direction(Mk, to_z @ zu, tol, "search", "direction with M z < 0 found without LP")
        lam_u = _search_lambda(U, tol)
        if lam_u is not None:
            return _omni(lam_u, nk, keep, "search", "lambda > 0 with M^T lambda = 0 found without LP")
    if naive:
        return _lp_naive(Mk, tol, time_limit)
    return _lp(Mk, U, to_z, nk, keep, tol, time_limit)


def _few_rows(Mn, Mk, tol: Tolerances) -> OmniResult:
    """At most d rows are never omnidirectional; the SVD gives the direction."""
    d = Mn.shape[1]
    U, s, Vt = np.linalg.svd(Mn, full_matrices=True)
    rank, decided = numerical_rank(s, tol)
    if not decided:
        return OmniResult(None, "rank", "rank of M inside the tolerance band",
                          condition=band_condition(s, tol))
    if rank < d:  # a null vector z has M z = 0
        return _direction(Mk, Vt[rank], tol, "rank", f"rank {rank} < {d}")
    z = (Vt.T / s) @ (-U.T @ np.ones(len(Mn)))  # square and invertible: M z = -D^-1 1 < 0
    return _direction(Mk, z, tol, "rank", f"{len(Mn)} rows in R^{d}")


def _orthonormal_basis(Mn, Mk, tol: Tolerances):
    """`(U, R^-1)` with `Mn = U R`, U orthonormal, when rank d is decided; else an OmniResult.

    A QR is cheaper than an SVD of Mn; the small R decides the rank (first by the cheap
    triangular test). The LP and searches run on U, and a z for U maps back by R^-1.
    """
    d = Mn.shape[1]
    U, R = np.linalg.qr(Mn)
    to_z = triangular_full_rank(R, tol)
    if to_z is None:
        Ur, s, Vt = np.linalg.svd(R)
        rank, decided = numerical_rank(s, tol)
        if not decided:
            return OmniResult(None, "rank", "rank of M inside the tolerance band",
                              condition=band_condition(s, tol))
        if rank < d:
            return _direction(Mk, Vt[rank], tol, "rank", f"rank {rank} < {d}")
        to_z = (Vt.T / s) @ Ur.T
    return U, to_z


def _direction(M, z, tol, method, status) -> OmniResult:
    """Check `M z <= 0` on the rows kept as nonzero (rows below the zero threshold are 0)."""
    z = z / np.linalg.norm(z)
    if certifies_direction(M, z, tol):
        return OmniResult(False, method, status, direction=z)
    return OmniResult(None, method, status + "; its certificate failed the check", condition=_cond(M))


def _cond(M: np.ndarray) -> float:
    """Condition number of M (rows scaled to unit norm), for a certificate that failed."""
    norms = np.linalg.norm(M, axis=1)
    return float(np.linalg.cond(M[norms > 0] / norms[norms > 0, None])) if np.any(norms > 0) else float("inf")


def certifies_direction(M, z, tol: Tolerances = Tolerances()) -> bool:
    """True when `z != 0` and every `(M z)_i <= tol.cert * |M_i| |z|` (so M z <= 0)."""
    M = np.asarray(M, dtype=np.float64)
    zn = float(np.linalg.norm(z))
    if zn == 0.0 or not np.isfinite(zn):
        return False
    bound = tol.cert * np.linalg.norm(M, axis=1) * zn
    return bool(np.all(M @ z <= bound))


def _omni(lam_u, nk, keep, method, status, value=None) -> OmniResult:
    """Map a verified `lam_u` (for the scaled rows) back to a lambda of M."""
    lam = np.zeros(len(keep))
    lam[keep] = lam_u / nk
    if not np.all(keep):
        lam[~keep] = lam[keep].min()  # zero rows: any positive weight works
    return OmniResult(True, method, status, value, lam=lam / lam.sum())


def _certifies_lambda(U: np.ndarray, lam_u: np.ndarray, tol: Tolerances) -> bool:
    """U has orthonormal columns, so `lam_u + delta` with `|delta| <= |U^T lam_u|` solves
    `U^T lam = 0` exactly; it stays positive when that residual is below `min(lam_u)`.
    A margin keeps roundoff out: scaled to sum 1, `k * min(lam_u)` must clear `band * lp`,
    the same threshold as the LP optimum."""
    total = lam_u.sum()
    if not total > 0:
        return False
    lam_u = lam_u / total
    low = lam_u.min()
    return bool(len(lam_u) * low > tol.band * tol.lp and np.linalg.norm(U.T @ lam_u) < low)


def _search_lambda(U: np.ndarray, tol: Tolerances) -> np.ndarray | None:
    """Minimise `|U^T lambda|^2` over `lambda >= 1` (L-BFGS-B) until `lambda - U U^T lambda`
    is a certified positive null vector; None when it is not found in `_LAMBDA_STEPS`."""
    from scipy.optimize import minimize

    found = []

    def fun(lam):
        r = U.T @ lam
        return 0.5 * float(r @ r), U @ r

    def stop(xk):  # called by L-BFGS-B with the current iterate
        lam = xk - U @ (U.T @ xk)
        if lam.min() > 0 and _certifies_lambda(U, lam, tol):
            found.append(lam)
            raise StopIteration

    k = U.shape[0]
    x0 = np.ones(k)
    try:
        stop(x0)
        minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(1.0, None)] * k, callback=stop,
                 options=dict(maxiter=_LAMBDA_STEPS, ftol=0.0, gtol=0.0))
    except StopIteration:
        pass
    return found[0] if found else None


def _search_direction(U: np.ndarray) -> np.ndarray | None:
    """Minimise `|(U z + 1)_+|^2` (L-BFGS-B, from the least-squares z of `U z = -1`) until
    `U z < 0`; None when not found in `_DIRECTION_STEPS`. Rows that lie in an open
    half-space (the unbounded case) are found fast; omnidirectional rows never pass."""
    from scipy.optimize import minimize

    found = []

    def fun(z):
        r = np.maximum(U @ z + 1.0, 0.0)
        return 0.5 * float(r @ r), U.T @ r

    def stop(zk):
        if (U @ zk).max() < 0:
            found.append(zk.copy())
            raise StopIteration

    z0 = -U.T @ np.ones(U.shape[0])
    try:
        stop(z0)
        minimize(fun, z0, jac=True, method="L-BFGS-B", callback=stop,
                 options=dict(maxiter=_DIRECTION_STEPS, ftol=0.0, gtol=0.0))
    except StopIteration:
        pass
    return found[0] if found else None


_HIGHS_GREETED: set[int] = set()  # processes whose first Highs() has printed its banner


def _silent_highs():
    """A HiGHS instance that prints nothing. The first `Highs()` of a process writes a
    banner to the C-level stdout before any option can be set, so that one construction
    runs with file descriptor 1 pointed at /dev/null."""
    import highspy

    if os.getpid() in _HIGHS_GREETED:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _HIGHS_GREETED.add(os.getpid())
    h.setOptionValue("output_flag", False)
    return h


def _lp(M, U, to_z, nk, keep, tol: Tolerances, time_limit: float | None = None) -> OmniResult:
    """max t s.t. U^T (t 1 + mu) = 0, 1^T mu + k t = 1, mu >= 0 (t free), by HiGHS."""
    import highspy

    k, d = U.shape
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = k + 1, d + 1
    lp.col_cost_ = np.r_[np.zeros(k), -1.0]
    lp.col_lower_ = np.r_[np.zeros(k), -inf]
    lp.col_upper_ = np.full(k + 1, inf)
    lp.row_lower_ = lp.row_upper_ = np.r_[np.zeros(d), 1.0]
    cols = np.empty((k + 1, d + 1))
    cols[:k, :d], cols[:k, d] = U, 1.0
    cols[k, :d], cols[k, d] = U.sum(axis=0), float(k)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, (k + 1) * (d + 1) + 1, d + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.tile(np.arange(d + 1, dtype=np.int32), k + 1)
    lp.a_matrix_.value_ = cols.ravel()
    h = _silent_highs()
    h.setOptionValue("threads", 1)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        # Infeasible means U z = 1 for some z; the least-squares z then certifies.
        return _direction(M, to_z @ (-U.T @ np.ones(k)), tol, "lp", "LP infeasible")
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return OmniResult(None, "lp", f"HiGHS: {status}", condition=_cond(M))
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    t = float(x[k])
    value = k * t
    if value > tol.band * tol.lp:
        lam_u = t + x[:k]
        if _certifies_lambda(U, lam_u, tol):
            return _omni(lam_u, nk, keep, "lp", status, value)
        return OmniResult(None, "lp", status + "; lambda failed the check", value, condition=1.0 / value)
    if value < tol.lp:
        y = np.asarray(sol.row_dual)[:d]
        for z in (to_z @ y, -(to_z @ y)):  # sign convention of the duals
            if np.linalg.norm(z) > 0 and certifies_direction(M, z / np.linalg.norm(z), tol):
                return OmniResult(False, "lp", status, value, direction=z / np.linalg.norm(z))
        return OmniResult(None, "lp", status + "; no direction passed the check", value, condition=_cond(M))
    return OmniResult(None, "lp", status + "; optimum inside the tolerance band", value,
                      condition=1.0 / value)


def _lp_naive(Mk, tol: Tolerances, time_limit: float | None = None) -> OmniResult:
    """The naive form: max t s.t. M^T lambda = 0, 1^T lambda = 1, lambda_i >= t as k rows."""
    from scipy import sparse
    from scipy.optimize import linprog

    k, d = Mk.shape
    c = np.r_[np.zeros(k), -1.0]
    a_eq = np.vstack([np.c_[Mk.T, np.zeros(d)], np.r_[np.ones(k), 0.0]])
    b_eq = np.r_[np.zeros(d), 1.0]
    a_ub = sparse.hstack([-sparse.eye(k), sparse.csr_matrix(np.ones((k, 1)))]).tocsr()
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(k), A_eq=a_eq, b_eq=b_eq,
                  bounds=[(None, None)] * (k + 1), method="highs",
                  options={} if time_limit is None else {"time_limit": float(time_limit)})
    if res.status != 0:
        return OmniResult(None, "lp-naive", res.message, condition=_cond(Mk))
    value = k * float(res.x[k])
    if value > tol.band * tol.lp:
        return OmniResult(True, "lp-naive", res.message, value)
    if value < tol.lp:
        return OmniResult(False, "lp-naive", res.message, value)
    return OmniResult(None, "lp-naive", res.message + "; optimum inside the tolerance band", value,
                      condition=1.0 / value)
