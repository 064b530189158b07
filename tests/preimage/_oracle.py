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
