"""Independent oracles: pre-image extents by coordinate LPs, boundedness of {M z <= 1}."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog as _linprog


def linprog(c, **kw):
    """scipy's linprog; on a non-optimal status, once more without presolve.

    Our polytopes always contain a known point, so "infeasible" can only be HiGHS's
    presolve reporting "infeasible or unbounded"; without presolve it is told apart.
    """
    res = _linprog(c, **kw)
    if res.status not in (0, 3):
        res = _linprog(c, options={"presolve": False}, **kw)
    return res


def oracle_kind(W: np.ndarray, b: np.ndarray, x: np.ndarray, extent_tol: float = 1e-7) -> str:
    """Kind of the pre-image of ReLU(W x + b) from 2n LPs over the polytope in input space.

    The polytope is {x' : W_P x' = W_P x, W_Z x' + b_Z <= 0} (P: z > 0 exactly). Each
    coordinate is minimised and maximised; an unbounded LP means an unbounded pre-image;
    otherwise a singleton when every extent is below `extent_tol`.
    """
    z = W @ x + b
    P = z > 0
    n = W.shape[1]
    kw = dict(A_ub=W[~P] if (~P).any() else None, b_ub=-b[~P] if (~P).any() else None,
              A_eq=W[P] if P.any() else None, b_eq=W[P] @ x if P.any() else None,
              bounds=[(None, None)] * n, method="highs")
    extent = 0.0
    for j in range(n):
        vals = []
        for sign in (1.0, -1.0):
            c = np.zeros(n)
            c[j] = sign
            res = linprog(c, **kw)
            if res.status == 3:
                return "unbounded"
            assert res.status == 0, res.message
            vals.append(sign * res.fun)
        extent = max(extent, vals[1] - vals[0])
    return "singleton" if extent <= extent_tol else "compact"


def oracle_omni(M: np.ndarray) -> bool:
    """M is omnidirectional iff {z : M z <= 1} is bounded (its recession cone is M z <= 0)."""
    k, d = M.shape
    for j in range(d):
        for sign in (1.0, -1.0):
            c = np.zeros(d)
            c[j] = sign
            res = linprog(c, A_ub=M if k else None, b_ub=np.ones(k) if k else None,
                          bounds=[(None, None)] * d, method="highs")
            if res.status == 3:
                return False
            assert res.status == 0, res.message
    return True


def oracle_kind_primal(W: np.ndarray, b: np.ndarray, x: np.ndarray, zero: float = 1e-9,
                       lp_tol: float = 1e-7) -> str:
    """Kind of the pre-image from one or two primal LPs over directions in input space.

    The second formulation, independent of the classifier's (a dual LP over lambda in the
    null-space coordinates of W_P): rows split as the classifier states them (|z_i| at
    most `zero` times its terms is tight), then the pre-image is unbounded iff some v != 0
    has W_P v = 0, W_Z v <= 0: max 1^T(-W_Z v) over the box |v| <= 1 is positive, or
    [W_P; W_Z] is rank deficient. It is a single point iff the same holds for no v with
    W_P v = 0, W_T v <= 0 (T: the tight rows).
    """
    z = W @ x + b
    lo = zero * (np.abs(W) @ np.abs(x) + np.abs(b))
    P, T = z > lo, np.abs(z) <= lo
    if P.sum() >= W.shape[1] and np.linalg.matrix_rank(W[P]) == W.shape[1]:
        return "singleton"  # the equalities alone pin x down
    if not _cone_is_zero(W[P], W[~P]):
        return "unbounded"
    return "singleton" if _cone_is_zero(W[P], W[T]) else "compact"


def _cone_is_zero(E: np.ndarray, A: np.ndarray, lp_tol: float = 1e-7) -> bool:
    """Whether {v : E v = 0, A v <= 0} = {0}."""
    n = E.shape[1]
    both = np.vstack([E, A])
    if len(both) == 0 or np.linalg.matrix_rank(both) < n:
        return False
    if len(A) == 0:
        return True
    # max 1^T(-A v) = -min (1^T A) v
    res = linprog(A.sum(axis=0), A_ub=A, b_ub=np.zeros(len(A)), A_eq=E if len(E) else None,
                  b_eq=np.zeros(len(E)) if len(E) else None, bounds=[(-1.0, 1.0)] * n, method="highs")
    assert res.status == 0, res.message
    return bool(-res.fun <= lp_tol * np.abs(A).sum())
