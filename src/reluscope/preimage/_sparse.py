"""Pre-images of conv layers from their sparse matrix: same answers as the dense path, fast.

A conv layer is a sparse matrix (a 3x3 conv over 3 channels has 27 entries per row of
its 32,768 x 3,072 unroll). `conv_matrix` builds it as a SciPy CSR matrix straight from
the kernel by index arithmetic, and `classify_sparse` decides a sample the way
`reluscope.preimage.classify` does, with the same tolerances:

1. `z = W x + b` and the sizes `|W| |x| + |b|` are sparse products; the rows are split into
   P, Z and tight rows T exactly as in `_classify` (band rows by exact rational signs).
2. When W_P has at least n rows and no zero column, *full column rank* is certified
   without any dense factorisation: `G = W_P^T W_P` is sparse and banded after a
   reverse Cuthill-McKee ordering (computed once per layer), and a banded Cholesky of
   `G - mu I` that succeeds proves `sigma_min(W_P) > theta` (Rump, "Verification of
   positive definiteness", BIT 46, 2006), `mu` being `theta^2` plus bounds on the rounding
   of forming G and of the Cholesky. `theta` is twice the dense path's threshold
   `tol.band * tol.rank * max(ref, sigma_max)` (with an upper bound on sigma_max), so
   the dense rank test answers "singleton" too.
3. Otherwise the null space of W_P comes from its nonzero columns only (zero columns are
   null directions as they are), by the dense path's own `_null_space`, and the kind from
   `decide_null_space` on `W_Z N` (a sparse times dense product), as in `_classify`.

Where a pre-activation sits within a relative 1e-6 of a threshold of the sign test (so
the order of the floating-point sums could matter), the sample goes to the dense path.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from scipy import sparse

from .._distribute import default_workers, map_samples
from ..errors import ConfigError, ShapeError
from ._batch import BatchResult
from ._classify import (
    PreimageResult,
    _classify,
    _null_space,
    decide_null_space,
    degenerate_rank,
    exact_signs,
    split_rows,
)
from ._tol import Tolerances

_EPS = np.finfo(np.float64).eps / 2  # unit roundoff u
_GUARD = 1e-6  # relative distance of |z| to a sign-test threshold that sends a sample to the dense path
_MARGIN = 2.0  # the certified sigma_min clears the dense path's rank threshold by this factor


def _gamma(k: int) -> float:
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of a k-term sum."""
    return k * _EPS / (1 - k * _EPS)


def _pair(v, dims: int) -> tuple[int, ...]:
    return (int(v),) * dims if isinstance(v, int) else tuple(int(e) for e in v)


def is_sparse_conv(lay) -> bool:
    """True for a plain Conv1d/Conv2d layer with zero padding (the cases `conv_matrix` builds)."""
    m = lay.module
    return (lay.kind in ("conv1d", "conv2d") and isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))
            and getattr(m, "padding_mode", "zeros") == "zeros" and not lay.flatten)


def conv_matrix(weight: torch.Tensor, in_shape, out_shape, stride, padding, dilation,
                groups: int) -> sparse.csr_array:
    """The matrix `(prod(out_shape), prod(in_shape))` of a conv (no bias), in CSR, float64.

    Built from the kernel by index arithmetic: output `(o, i, j)` reads input
    `(c, i s - p + k d, j s - p + l d)` with weight `w[o, c mod C/g, k, l]`.

    Arguments:
        weight: `(O, C/groups, *kernel)`, 1-D or 2-D kernel.
        in_shape, out_shape: `(C, L)` / `(O, L')` or `(C, H, W)` / `(O, H', W')`.
        stride, padding, dilation: ints or tuples (padding also `"valid"` or `"same"`).
        groups: the conv's groups.

    >>> w = torch.tensor([[[1.0, 2.0]]])
    >>> conv_matrix(w, (1, 3), (1, 2), 1, 0, 1, 1).toarray().tolist()
    [[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
    """
    w = weight.detach().to("cpu", torch.float64).numpy()
    if w.ndim == 3:  # conv1d: a 2-D conv with height 1
        w = w[:, :, None, :]
        in_shape, out_shape = (in_shape[0], 1, in_shape[1]), (out_shape[0], 1, out_shape[1])
        stride, dilation = (1, _pair(stride, 1)[0]), (1, _pair(dilation, 1)[0])
        padding = padding if isinstance(padding, str) else (0, _pair(padding, 1)[0])
    O, cg, KH, KW = w.shape
    C, H, Wd = in_shape
    _, OH, OW = out_shape
    (sh, sw), (dh, dw) = _pair(stride, 2), _pair(dilation, 2)
    if padding == "valid":
        ph = pw = 0
    elif padding == "same":  # PyTorch puts the odd pixel on the bottom/right
        ph, pw = dh * (KH - 1) // 2, dw * (KW - 1) // 2
    else:
        ph, pw = _pair(padding, 2)
    o, c, k, l, i, j = np.meshgrid(np.arange(O), np.arange(cg), np.arange(KH), np.arange(KW),
                                   np.arange(OH), np.arange(OW), indexing="ij", sparse=True)
    ih, iw = i * sh - ph + k * dh, j * sw - pw + l * dw
    cin = (o // (O // groups)) * cg + c
    ok = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < Wd)
    shape = np.broadcast_shapes(o.shape, c.shape, k.shape, l.shape, i.shape, j.shape)
    mask = np.broadcast_to(ok, shape)
    rows = np.broadcast_to((o * OH + i) * OW + j, shape)[mask]
    cols = np.broadcast_to((cin * H + ih) * Wd + iw, shape)[mask]
    vals = np.broadcast_to(w[o, c, k, l], shape)[mask]
    W = sparse.csr_array((vals, (rows, cols)), shape=(O * OH * OW, C * H * Wd))
    W.eliminate_zeros()
    W.sort_indices()
    return W


def sparse_layer_system(net, index: int) -> tuple[sparse.csr_array, np.ndarray] | None:
    """Layer `index`'s affine map as a float64 CSR `W (m, n)` and `b (m,)`, or None when the
    layer is no plain zero-padded conv (then use the dense `layer_system`). Equal, entry for
    entry, to the dense unroll of `reluscope.preimage._net.layer_system`."""
    if not is_sparse_conv(net.layers[index]):
        return None
    net64 = net.copy(dtype=torch.float64, device="cpu")
    lay = net64.layers[index]
    with torch.no_grad():
        w, b = lay.parameters()
        W = conv_matrix(w, lay.in_shape, lay.out_shape, **lay.conv_args)
        b = lay.affine(torch.zeros(1, *lay.in_shape, dtype=torch.float64)).reshape(-1).numpy()
    return W, b


@dataclass
class SparseLayer:
    """A layer `ReLU(W x + b)` with W sparse, and what every sample reuses: `|W|`, the
    largest row norm, a bandwidth-reducing column order of `W^T W`, and (built only when
    a sample needs it) the dense W of the fallback."""

    W: sparse.csr_array
    b: np.ndarray
    absW: sparse.csr_array = field(init=False, repr=False)
    row_scale: float = field(init=False)
    order: np.ndarray = field(init=False, repr=False)
    bandwidth: int = field(init=False)
    _dense: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        self.W = sparse.csr_array(self.W, dtype=np.float64)
        self.W.sort_indices()
        self.b = np.asarray(self.b, dtype=np.float64).reshape(-1)
        if self.W.ndim != 2 or 0 in self.W.shape:
            raise ShapeError(f"W must be a non-empty matrix (m, n), got shape {self.W.shape}")
        if self.b.shape[0] != self.W.shape[0]:
            raise ShapeError(f"b has {self.b.shape[0]} entries but W has {self.W.shape[0]} rows; "
                             "they must match")
        if not (np.all(np.isfinite(self.W.data)) and np.all(np.isfinite(self.b))):
            raise ShapeError("W or b has NaN or infinite entries; check the model weights")
        self.absW = abs(self.W)
        self.row_scale = float(np.sqrt(self.W.multiply(self.W).sum(axis=1)).max())
        pattern = (self.absW.T @ self.absW).tocsr()
        self.order = reverse_cuthill_mckee(pattern, symmetric_mode=True).astype(np.int64)
        self.bandwidth = _bandwidth(pattern, self.order)

    @property
    def shape(self) -> tuple[int, int]:
        return self.W.shape

    def dense(self) -> np.ndarray:
        if self._dense is None:
            self._dense = self.W.toarray()
        return self._dense

    def __getstate__(self):  # the dense fallback is rebuilt where needed, never shipped
        return {**self.__dict__, "_dense": None}


def _bandwidth(G: sparse.csr_array, order: np.ndarray) -> int:
    coo = G.tocoo()
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return int(np.abs(inv[coo.row] - inv[coo.col]).max(initial=0))


def classify_sparse(layer: SparseLayer, x, tol: Tolerances = Tolerances(), *,
                    search: bool = True) -> PreimageResult:
    """`reluscope.preimage.classify` for a layer with a sparse W: the same kinds, tolerances and
    certificates (see the module docstring for how).

    Arguments:
        layer: a `SparseLayer` (W as any SciPy sparse matrix, b).
        x: the sample (n,).
        tol: tolerances, as for `classify`.
        search: as for `classify`.

    >>> W = sparse.csr_array(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    >>> classify_sparse(SparseLayer(W, np.zeros(3)), np.array([1.0, 2.0])).kind
    'singleton'
    """
    start = time.perf_counter()
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size != layer.shape[1]:
        raise ShapeError(f"x has {x.size} entries but W has {layer.shape[1]} columns; flatten x to (n,)")
    if not np.all(np.isfinite(x)):
        raise ShapeError("x has NaN or infinite entries; check the model weights and the input")
    res = _classify_sparse(layer, x, tol, search)
    return PreimageResult(**{**res.__dict__, "seconds": time.perf_counter() - start})


def _classify_sparse(layer: SparseLayer, x: np.ndarray, tol: Tolerances, search: bool) -> PreimageResult:
    W, b = layer.W, layer.b
    m, n = W.shape
    z = W @ x + b
    scale = layer.absW @ np.abs(x) + np.abs(b)
    lo = tol.zero * scale
    az = np.abs(z)
    near = (np.abs(az - lo) <= _GUARD * lo) | (np.abs(az - tol.band * lo) <= _GUARD * tol.band * lo)
    if np.any(near & (lo > 0)):  # the sum order could move a row across a threshold
        return _classify(layer.dense(), b, x, tol, search)
    P, T, exact = split_rows(z, scale, tol, lambda rows: exact_signs(W[rows].toarray(), b[rows], x))
    n_pos, n_tight = int(P.sum()), int(T.sum())
    A = W[P]
    cols = np.unique(A.indices)
    spans = "rank: active rows span the input"
    if len(cols) == n and n_pos >= n and full_column_rank(A, layer.order, layer.bandwidth, tol,
                                                          layer.row_scale):
        return PreimageResult("singleton", n_pos, n_tight, n, 0, spans, **exact)
    # Null space from the nonzero columns; zero columns of W_P are null directions as they are.
    rank, Nc, condition = (_null_space(A[:, cols].toarray(), len(cols), tol, ref=layer.row_scale)
                           if len(cols) else (0, np.zeros((0, 0)), None))
    if condition is not None:
        return degenerate_rank(n_pos, n_tight, condition, exact)
    if rank == n:
        return PreimageResult("singleton", n_pos, n_tight, rank, 0, spans, **exact)
    zero_cols = np.setdiff1d(np.arange(n), cols)
    N = np.zeros((n, n - rank))
    N[cols, :Nc.shape[1]] = Nc
    N[zero_cols, Nc.shape[1] + np.arange(len(zero_cols))] = 1.0
    return decide_null_space(W, P, T, rank, N, layer.row_scale, tol, search, exact)


def full_column_rank(A: sparse.csr_array, order: np.ndarray, bandwidth: int, tol: Tolerances,
                     ref: float) -> bool:
    """True when `sigma_min(A)` provably exceeds `_MARGIN` times the dense rank threshold
    `tol.band * tol.rank * max(ref, sigma_max(A))`; False when that is not proved.

    `G = A^T A` (sparse, columns in `order`, all within `bandwidth` of the diagonal) minus
    `mu I` has a banded Cholesky factor only if `lambda_min(G) > theta^2`, with `mu` =
    `theta^2` + the rounding of G's entries (`gamma_k tr G`, k the longest column) + Rump's
    bound for the Cholesky (`gamma_{w+2} / (1 - gamma_{w+2}) tr G`, doubled) + the shift's own
    rounding.

    >>> A = sparse.csr_array(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))
    >>> full_column_rank(A, np.arange(2), 1, Tolerances(), 1.0)
    True
    """
    from scipy.linalg import LinAlgError, cholesky_banded

    n = A.shape[1]
    absA = abs(A)
    smax = min(math.sqrt(float(absA.sum(axis=0).max()) * float(absA.sum(axis=1).max())),
               math.sqrt(float(A.multiply(A).sum())))
    theta = _MARGIN * tol.band * tol.rank * max(ref, smax)
    Ao = A.tocsc()[:, order]
    G = (Ao.T @ Ao).tocoo()
    trace = float(G.diagonal().sum())
    longest = int(np.diff(Ao.indptr).max(initial=0))
    g = _gamma(bandwidth + 2)
    mu = theta**2 + _gamma(longest) * trace + 2.0 * g / (1 - g) * trace
    mu += 2 * _EPS * float(G.diagonal().max(initial=0.0))
    upper = G.row <= G.col
    if np.any(G.col[upper] - G.row[upper] > bandwidth):  # not this layer's order: prove nothing
        return False
    ab = np.zeros((bandwidth + 1, n))
    ab[bandwidth + G.row[upper] - G.col[upper], G.col[upper]] = G.data[upper]
    ab[bandwidth] -= mu
    try:
        cholesky_banded(ab, lower=False, check_finite=False)
    except LinAlgError:
        return False
    return True


def classify_batch_sparse(W, b, X, tol: Tolerances = Tolerances(), *, workers: int | None = None,
                          search: bool = True, desc: str = "pre-images", scheduler: str | None = None,
                          context: str | None = None) -> BatchResult:
    """`classify_sparse` every row of X for the layer `ReLU(W x + b)`, W a SciPy sparse matrix
    (or a `SparseLayer`); the arguments and result are those of `classify_batch`."""
    layer = W if isinstance(W, SparseLayer) else SparseLayer(W, b)
    X = np.asarray(X.detach().cpu().double().numpy() if hasattr(X, "detach") else X, dtype=np.float64)
    if X.ndim < 1 or len(X) == 0:
        raise ShapeError("X holds no samples; pass an array (N, n) with N >= 1")
    X = X.reshape(len(X), -1)
    if X.shape[1] != layer.shape[1]:
        raise ShapeError(f"samples have {X.shape[1]} entries but W has {layer.shape[1]} columns")
    if workers is not None and int(workers) < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    used = min(default_workers() if workers is None else int(workers), len(X))
    start = time.perf_counter()
    results = map_samples(partial(classify_sparse, layer, tol=tol, search=search), X, workers=used,
                          scheduler=scheduler, desc=desc, context=context)
    return BatchResult(tuple(results), time.perf_counter() - start, used)
