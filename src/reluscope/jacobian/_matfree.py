"""Matrix-free Jacobian spectra: from Jacobian–vector products only, never forming J.

Where a layer's Jacobian J (m × n at one sample) does not fit in memory (one ResNet-18
image at 3×224×224 has a dense Jacobian of about a terabyte), its spectrum is estimated
from products `J v` (`torch.func.jvp`) and `J^T u` (`torch.func.vjp`), batched with
`torch.func.vmap` where several vectors are pushed at once. Memory is O(steps·(m + n)).

* Top k singular values: Golub–Kahan–Lanczos bidiagonalisation with full
  reorthogonalisation (`bidiagonalize`), started in J's row space (v₁ ∝ J^T g), restarted
  with a fresh row-space vector when an invariant subspace is found (so multiple singular
  values are all found). For a Ritz value θ_i of the bidiagonal B with left singular
  vector p_i, the residual is r_i = β_{s+1}|p_i[s]| and some singular value σ of J has
  |σ - θ_i| <= min(r_i, r_i² / gap_i) (the refined bound of PROPACK; gap_i: distance to the
  nearest other Ritz value). The run stops when every top-k bound is <= rtol·θ_i (the
  stated tolerance), or at the step limit (then the bounds say what was reached). As with
  any Krylov method, a singular value whose direction the random start misses entirely is
  not seen; with a random start that has probability zero.
* Smallest nonzero singular value: the smallest Ritz value θ_min of the same run. From a
  row-space start, θ_min >= σ_min (the smallest nonzero singular value) in exact
  arithmetic, so θ_min is always an *upper bound*; it is `resolved` when its refined bound
  is <= rtol·θ_min, and `exact` when the run exhausted the row space (steps = rank: every
  nonzero singular value was found). The condition number σ₁/θ_min is then a lower bound
  unless the smallest value is resolved.
* Density of J^T J: stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; PyHessian's
  method for Hessians), `slq`. For each Rademacher probe z, `steps` Golub–Kahan steps from
  z/|z| give T = B^T B, whose eigenvalues θ_j² and squared first eigenvector components w_j
  are Gauss quadrature nodes and weights for z^T g(J^T J) z / n. The CDF estimate is the
  probe mean of Σ w_j 1[θ_j² <= t]; its standard error comes from the probe spread. Per
  probe, the quadrature CDF is within max_j w_j of the probe's true CDF (Karlin–Shapley /
  Chebyshev–Markov–Stieltjes inequalities), so `ks_bound` = mean over probes of the
  largest nonzero node weight + 3 standard errors bounds the Kolmogorov distance to the
  exact spectrum's CDF (the stochastic part at about 3σ).
* Numerical rank: singular values below τ = d·eps·σ₁ (d = max(m, n)) are zero, as on the
  exact `svd` path: an exact count when the row space was exhausted. Else n(1 - zero mass)
  from the density, with its standard error, where eigenvalues of J^T J below d·eps·λ_max
  count as zero (the `gram` path's resolution: Lanczos on J^T J cannot do better), clipped
  to the bounds `rank_lo`/`rank_hi`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

DEFAULT_K = 20
DEFAULT_PROBES = 16
SLQ_STEPS = 40
GRID = 200  # points of the smoothed density and CDF
BANDWIDTH = 0.05  # Gaussian kernel width of the smoothed density, in decades of λ
SAMPLE_SEED_STRIDE = 7919  # sample b's start and probe vectors are drawn from seed + 7919 b
LARGE_INPUT = 3 * 64 * 64  # inputs of at least this many values: linearized jvps, float32, stage outputs
FLOAT32_RTOL = 1e-4  # the least relative tolerance asked of the top k in float32 (products carry ~eps·depth)


# -- the operator -------------------------------------------------------------------------
class JacobianOperator:
    """The Jacobian of `f` (flat `(n,)` -> flat `(m,)`) at `x`, as products only.

    `matvec(V)`: `(k, n) -> (k, m)`, rows `J v` (forward mode, `vmap` over the rows: the
    primal is computed once). `rmatvec(U)`: `(k, m) -> (k, n)`, rows `J^T u` (reverse mode
    through one recorded forward, `vmap` over the rows).

    `linearize`: forward products from `torch.func.linearize` (the forward pass is traced
    once, its ReLU masks and activations kept; each product then pushes the tangent only:
    2–5× cheaper per product at 224×224, the same numbers to rounding); default: for inputs
    of at least `LARGE_INPUT` values, where the one-off trace (a second or more) pays off.
    """

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 linearize: bool | None = None):
        self.f, self.x = f, x.detach().reshape(-1)
        with torch.enable_grad():
            self.y, self._vjp = torch.func.vjp(f, self.x)
        self.y = self.y.detach()
        self.m, self.n = self.y.numel(), self.x.numel()
        self.dtype, self.device = self.x.dtype, self.x.device
        self.products = 0
        self.linearized = self.n >= LARGE_INPUT if linearize is None else bool(linearize)
        self._jvp = None
        if self.linearized:
            import warnings

            with warnings.catch_warnings(), torch.enable_grad():
                warnings.filterwarnings("ignore", message="Attempted to insert a get_attr Node")
                self._jvp = torch.func.linearize(f, self.x)[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.m, self.n

    def matvec(self, V: torch.Tensor) -> torch.Tensor:
        self.products += V.shape[0]

        def one(v):
            return torch.func.jvp(self.f, (self.x,), (v,))[1]

        with torch.enable_grad():
            return torch.func.vmap(self._jvp if self.linearized else one)(V).detach()

    def rmatvec(self, U: torch.Tensor) -> torch.Tensor:
        self.products += U.shape[0]
        with torch.enable_grad():
            return torch.func.vmap(self._vjp)(U)[0].detach()


# -- Golub–Kahan–Lanczos for the top k --------------------------------------------------
def _orth(w: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """`w` (…, d) minus its projection on the rows of `Q` (…, s, d), twice (twice is enough)."""
    if Q.shape[-2] == 0:
        return w
    for _ in range(2):
        w = w - (Q.transpose(-1, -2) @ (Q @ w.unsqueeze(-1))).squeeze(-1)
    return w


@dataclass
class Bidiagonal:
    """`A V = U B`, `A^T U = V B^T + beta_next v_next e_s^T` after `s` steps."""

    alphas: list[float]
    betas: list[float]  # betas[j]: superdiagonal coupling of column j (betas[0] = 0)
    beta_next: float
    exhausted: bool  # the row space is spanned: every nonzero singular value is found
    restarts: int

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def matrix(self) -> np.ndarray:
        s = self.steps
        B = np.zeros((s, s))
        B[np.arange(s), np.arange(s)] = self.alphas
        if s > 1:
            B[np.arange(s - 1), np.arange(1, s)] = self.betas[1:]
        return B


class GolubKahan:
    """Golub–Kahan–Lanczos bidiagonalisation of `op` with full reorthogonalisation,
    extendable step by step (`run(steps)`), started in the row space (v₁ ∝ A^T g).

    An invariant subspace (β ≈ 0) is continued with a fresh row-space vector orthogonal to
    the basis (β = 0 in B); when no such vector is left (its norm is below the resolution
    τ = d·eps·σ₁ for two random g), or the basis reaches min(m, n) vectors, the row space is
    exhausted.
    """

    def __init__(self, op: JacobianOperator, generator: torch.Generator, max_steps: int, bar=None):
        self.op, self.gen, self.bar = op, generator, bar
        self.max_steps = max(1, min(max_steps, op.m, op.n))
        self.U = op.x.new_zeros(self.max_steps, op.m)
        self.V = op.x.new_zeros(self.max_steps + 1, op.n)
        self.eps = torch.finfo(op.dtype).eps
        self.d = max(op.m, op.n)
        self.alphas: list[float] = []
        self.betas: list[float] = [0.0]
        self.beta_next = 0.0
        self.exhausted = False
        self.restarts = 0
        self.scale = 0.0  # running estimate of σ₁
        v = self._fresh(0)
        if v is None:
            self.exhausted = True  # a zero Jacobian
        else:
            self.V[0] = v

    def _randn(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, dtype=self.op.dtype).to(self.op.device)

    def _fresh(self, j: int) -> torch.Tensor | None:
        """A unit row-space vector orthogonal to V[:j], or None where none is resolvable."""
        W = self.op.rmatvec(self._randn((2, self.op.m)))
        norms = W.norm(dim=1)
        W = _orth(W, self.V[:j])
        left = W.norm(dim=1)
        tau = self.d * self.eps * max(self.scale, float(norms.max()) / math.sqrt(self.op.m))
        best = int(left.argmax())
        if float(left[best]) <= tau * math.sqrt(self.op.m) or float(norms[best]) == 0:
            return None
        return W[best] / left[best]

    @property
    def steps(self) -> int:
        return len(self.alphas)

    def run(self, steps: int) -> Bidiagonal:
        steps = min(steps, self.max_steps)
        while self.steps < steps and not self.exhausted:
            j = self.steps
            u = self.op.matvec(self.V[j:j + 1])[0]
            if j:
                u = u - self.betas[j] * self.U[j - 1]
            u = _orth(u, self.U[:j])
            alpha = float(u.norm())
            self.scale = max(self.scale, alpha)
            tiny = self.d * self.eps * self.scale
            if alpha <= tiny:  # A v_j ≈ 0 on the basis' complement: keep U orthonormal
                alpha = 0.0
                u = _orth(self._randn((self.op.m,)), self.U[:j])
                u = u / u.norm()
            else:
                u = u / alpha
            self.U[j] = u
            self.alphas.append(alpha)
            if self.bar is not None:
                self.bar.update(1)
            v = self.op.rmatvec(u[None])[0] - alpha * self.V[j]
            v = _orth(v, self.V[:j + 1])
            beta = float(v.norm())
            self.scale = max(self.scale, beta)
            if j + 1 >= min(self.op.m, self.op.n):
                self.exhausted, self.beta_next = True, 0.0
                break
            if beta <= self.d * self.eps * self.scale:
                fresh = self._fresh(j + 1)
                if fresh is None:
                    self.exhausted, self.beta_next = True, 0.0
                    break
                self.restarts += 1
                self.V[j + 1] = fresh
                self.betas.append(0.0)
                self.beta_next = 0.0
            else:
                self.V[j + 1] = v / beta
                self.betas.append(beta)
                self.beta_next = beta
        if self.steps == self.max_steps and not self.exhausted:
            pass  # beta_next keeps the last coupling: the bounds are honest
        return Bidiagonal(list(self.alphas), list(self.betas[:self.steps]), self.beta_next, self.exhausted,
                          self.restarts)


def ritz(bd: Bidiagonal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values θ (descending), residuals r_i = β_{s+1}|p_i[s]| and refined error bounds
    min(r_i, r_i²/gap_i) of a bidiagonalisation."""
    if bd.steps == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    P, theta, _ = np.linalg.svd(bd.matrix())
    res = abs(bd.beta_next) * np.abs(P[-1, :])
    if len(theta) > 1:
        diff = np.abs(theta[:, None] - theta[None, :])
        np.fill_diagonal(diff, np.inf)
        gap = diff.min(1)
    else:
        gap = np.full(1, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        refined = np.where(gap > 0, res**2 / gap, res)
    return theta, res, np.minimum(res, refined)


# -- stochastic Lanczos quadrature ----------------------------------------------------------
@dataclass(frozen=True)
class Density:
    """Spectral density of J^T J (n eigenvalues, zeros included) by stochastic Lanczos quadrature.

    Attributes:
        nodes, weights: `(probes, steps)` Gauss quadrature per probe (eigenvalues of J^T J;
            values below the resolution d·eps·λ_max set to 0, as the `gram` method does;
            weights of a probe sum to 1; padded with zero weight where a probe's Krylov space closed early).
        grid: `(GRID,)` eigenvalues of J^T J, log-spaced over the nonzero nodes.
        pdf: density of the nonzero eigenvalues per decade of λ (Gaussian kernel of
            `BANDWIDTH` decades; integrates to 1 - zero_mass).
        cdf, cdf_se: estimated fraction of eigenvalues <= grid[i], and its standard error
            from the probe spread.
        zero_mass, zero_mass_se: fraction of eigenvalues below the resolution (n - rank)/n.
        ks_bound: bound on the Kolmogorov distance between the estimated and the exact CDF
            (quadrature part + 3 standard errors; see the module docstring).
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    pdf: np.ndarray
    cdf: np.ndarray
    cdf_se: np.ndarray
    zero_mass: float
    zero_mass_se: float
    ks_bound: float

    @property
    def probes(self) -> int:
        return self.nodes.shape[0]

    def cdf_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Estimated CDF of the eigenvalues of J^T J at `t`, and its standard error."""
        t = np.asarray(t, dtype=float)
        per = (self.weights[:, None, :] * (self.nodes[:, None, :] <= t[None, :, None])).sum(-1)
        se = per.std(0, ddof=1) / math.sqrt(per.shape[0]) if per.shape[0] > 1 else np.zeros(len(t))
        return per.mean(0), se

    def to_dict(self) -> dict:
        return dict(probes=self.probes, steps=self.nodes.shape[1], grid=self.grid, pdf=self.pdf, cdf=self.cdf,
                    cdf_se=self.cdf_se, zero_mass=self.zero_mass, zero_mass_se=self.zero_mass_se,
                    ks_bound=self.ks_bound)


def slq(op: JacobianOperator, probes: int, steps: int, generator: torch.Generator, scale: float,
        max_bytes: float, bar=None) -> Density:
    """The density of J^T J from `probes` Rademacher probes and `steps` Golub–Kahan steps each
    (full reorthogonalisation, probes pushed together with `vmap`, in groups that fit
    `max_bytes`). `scale`: σ₁ (sets the resolution τ = d·eps·σ₁)."""
    steps = max(1, min(steps, op.n, op.m + 1))
    item = op.x.element_size()
    per_probe = item * (steps + 1) * (op.m + op.n) * 2
    group = int(max(1, min(probes, max_bytes // max(per_probe, 1))))
    eps = torch.finfo(op.dtype).eps
    tau = max(op.m, op.n) * eps * scale
    zero = max(op.m, op.n) * eps * scale**2  # as `gram`: eigenvalues of J^T J below d·eps·λ_max are 0
    Z = (torch.randint(0, 2, (probes, op.n), generator=generator).to(op.dtype) * 2 - 1).to(op.device)
    nodes, weights = np.zeros((probes, steps)), np.zeros((probes, steps))
    for g0 in range(0, probes, group):
        Zg = Z[g0:g0 + group]
        for i, (th, w) in enumerate(_slq_group(op, Zg, steps, tau, bar)):
            nodes[g0 + i, :len(th)], weights[g0 + i, :len(w)] = th, w
    nodes = np.where(nodes <= zero, 0.0, nodes)
    return _density(nodes, weights)


def _slq_group(op, Z, steps, tau, bar=None):
    """Batched Golub–Kahan from the rows of Z: per probe (θ², first-component²) of B^T B."""
    p = Z.shape[0]
    V = Z.new_zeros(p, steps + 1, op.n)
    U = Z.new_zeros(p, steps, op.m)
    V[:, 0] = Z / Z.norm(dim=1, keepdim=True)
    alphas, betas = torch.zeros(p, steps, dtype=torch.float64), torch.zeros(p, steps + 1, dtype=torch.float64)
    alive = torch.ones(p, dtype=torch.bool)
    length = torch.full((p,), steps, dtype=torch.long)
    for j in range(steps):
        if bar is not None:
            bar.update(p / op_probes(bar))
        u = op.matvec(V[:, j])
        if j:
            u = u - betas[:, j, None].to(u) * U[:, j - 1]
        u = _orth(u, U[:, :j])
        a = u.norm(dim=1)
        stop = alive & (a.cpu() <= tau)  # A v_j ≈ 0: the Krylov space of A^T A closes at j + 1
        a_safe = torch.where(a > 0, a, torch.ones_like(a))
        U[:, j] = torch.where(alive.to(u.device)[:, None], u / a_safe[:, None], 0)
        alphas[:, j] = torch.where(alive & ~stop, a.cpu().double(), 0.0)
        length[stop] = j + 1
        alive &= ~stop
        if j + 1 == steps:
            break
        v = op.rmatvec(U[:, j]) - alphas[:, j, None].to(u) * V[:, j]
        v = _orth(v, V[:, :j + 1])
        b = v.norm(dim=1)
        stop = alive & (b.cpu() <= tau)
        b_safe = torch.where(b > 0, b, torch.ones_like(b))
        V[:, j + 1] = torch.where((alive & ~stop).to(v.device)[:, None], v / b_safe[:, None], 0)
        betas[:, j + 1] = torch.where(alive & ~stop, b.cpu().double(), 0.0)
        length[stop] = j + 1
        alive &= ~stop
    out = []
    for i in range(p):
        s = int(length[i])
        B = np.zeros((s, s))
        B[np.arange(s), np.arange(s)] = alphas[i, :s].numpy()
        if s > 1:
            B[np.arange(s - 1), np.arange(1, s)] = betas[i, 1:s].numpy()
        _, theta, Qt = np.linalg.svd(B)
        out.append((theta**2, Qt[:, 0] ** 2))  # right singular vectors: eigenvectors of B^T B
    return out


def op_probes(bar) -> int:
    """The probes of the density a progress bar counts (its steps are probe-averaged)."""
    return getattr(bar, "probes", 1) or 1


def _density(nodes: np.ndarray, weights: np.ndarray) -> Density:
    p = nodes.shape[0]
    weights = weights / weights.sum(1, keepdims=True)
    zero = (weights * (nodes == 0)).sum(1)
    positive = nodes[nodes > 0]
    if positive.size:
        lo, hi = np.log10(positive.min()), np.log10(positive.max())
        lo, hi = lo - 3 * BANDWIDTH, hi + 3 * BANDWIDTH
    else:
        lo, hi = -1.0, 1.0
    grid = np.logspace(lo, hi, GRID)
    lg = np.log10(np.where(nodes > 0, nodes, 1.0))
    kern = np.exp(-0.5 * ((np.log10(grid)[:, None, None] - lg[None]) / BANDWIDTH) ** 2)
    kern /= BANDWIDTH * math.sqrt(2 * math.pi)
    pdf = (kern * (weights * (nodes > 0))[None]).sum(-1).mean(1)
    per = (weights[:, None, :] * (nodes[:, None, :] <= grid[None, :, None])).sum(-1)
    se = per.std(0, ddof=1) / math.sqrt(p) if p > 1 else np.zeros(GRID)
    zse = float(zero.std(ddof=1) / math.sqrt(p)) if p > 1 else 0.0
    quad = float(np.mean([w[nd > 0].max() if (nd > 0).any() else 0.0 for nd, w in zip(nodes, weights)]))
    stoch = float(max(se.max() if se.size else 0.0, zse))
    return Density(nodes, weights, grid, pdf, per.mean(0), se, float(zero.mean()), zse,
                   min(1.0, quad + 3 * stoch))


# -- one Jacobian ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MatfreeSpectrum:
    """Matrix-free spectrum of one Jacobian at one sample (all figures but `top` under
    `exact=True` are estimates).

    Attributes:
        top: `(k,)` the k largest singular values (Ritz values), descending.
        top_bound: `(k,)` absolute error bounds (refined residual bounds).
        converged: every top value within `rtol` (relative).
        sigma_min: smallest nonzero singular value found: the certified Ritz value (θ - r > τ,
            so a nonzero singular value lies within r of it) with the least θ + r.
        sigma_min_bound: `exact`/`resolved`: its absolute error bound; `upper bound`: the
            residual r, so only σ_min <= sigma_min + sigma_min_bound is known.
        sigma_min_status: `exact` (row space exhausted), `resolved` (within rtol, and no smaller
            Ritz value was seen; a smaller singular value that the Krylov space has not reached
            yet cannot be excluded) or `upper bound`.
        rank, rank_se: numerical rank (exact count or SLQ estimate) and its standard error (0 if exact).
        rank_lo, rank_hi: bounds: certified nonzero Ritz values (below) and min(m, n, rows ever
            nonzero where known) (above); equal to `rank` when exact. The SLQ estimate resolves
            eigenvalues of J^T J near 0 only to about λ_max / steps², so it tends to the high side.
        rank_exact: whether the rank is a count (row space exhausted).
        condition: σ₁ / sigma_min (a lower bound unless sigma_min is exact or resolved).
        steps, products: Golub–Kahan steps; Jacobian–vector products in all (SLQ included).
        density: stochastic Lanczos quadrature of J^T J (None when not asked for).
        seconds: wall time of this spectrum, the operator's setup included (`layer_spectra`);
            density_seconds: of it, the density's.
    """

    top: np.ndarray
    top_bound: np.ndarray
    converged: bool
    sigma_min: float
    sigma_min_bound: float
    sigma_min_status: str
    rank: float
    rank_se: float
    rank_exact: bool
    condition: float
    steps: int
    products: int
    density: Density | None
    rank_lo: float = float("nan")
    rank_hi: float = float("nan")
    seconds: float = float("nan")
    density_seconds: float = float("nan")

    def to_dict(self) -> dict:
        return dict(rank_lo=self.rank_lo, rank_hi=self.rank_hi, top=self.top, top_bound=self.top_bound,
                    seconds=self.seconds, density_seconds=self.density_seconds,
                    converged=self.converged,
                    sigma_min=self.sigma_min, sigma_min_bound=self.sigma_min_bound,
                    sigma_min_status=self.sigma_min_status, rank=self.rank, rank_se=self.rank_se,
                    rank_exact=self.rank_exact, condition=self.condition, steps=self.steps,
                    products=self.products, density=None if self.density is None else self.density.to_dict())


def max_steps_for(m: int, n: int, item: int, max_bytes: float) -> int:
    """Golub–Kahan steps whose basis (U and V) fits `max_bytes` (half of it: the SLQ group
    and the net's own activations need the rest)."""
    return int(max(2, (max_bytes / 2) // (item * (m + n))))


def matfree_spectrum(op: JacobianOperator, k: int = DEFAULT_K, rtol: float = 1e-6,
                     probes: int = DEFAULT_PROBES, slq_steps: int = SLQ_STEPS, min_steps: int | None = None,
                     max_steps: int | None = None, seed: int = 0, max_bytes: float = 2 * 1024**3,
                     max_rank: int | None = None, bar=None) -> MatfreeSpectrum:
    """Top-k singular values, smallest nonzero one, rank, condition number and the SLQ
    density of the Jacobian `op`, from products only (see the module docstring).

    Arguments:
        op: the Jacobian as a `JacobianOperator`.
        k: how many of the largest singular values (capped at min(m, n)).
        rtol: relative tolerance asked of each of the top k (refined residual bound); in
            float32 at least `FLOAT32_RTOL` (the products themselves carry rounding of
            about eps·depth, which the residual bound does not see).
        probes, slq_steps: Rademacher probes and Lanczos steps per probe of the density
            (probes=0: no density; the rank is then exact or a lower bound).
        min_steps: Golub–Kahan steps at least (default max(3k, 60)): more steps sharpen
            the smallest nonzero value; the run goes on past them until the top k converge.
        max_steps: at most (default: what fits half of `max_bytes`, and at most 10k + 300).
        seed: start vectors and probes.
        max_rank: a known upper bound on the rank (e.g. the active units after a ReLU).
        bar: a progress bar (`reluscope._progress.progress`) to advance by Golub–Kahan steps
            and, with `bar.probes` set, by probe-averaged density steps.

    >>> A = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64))
    >>> r = matfree_spectrum(JacobianOperator(lambda x: A @ x, torch.ones(4, dtype=torch.float64)), k=2)
    >>> r.top.round(12).tolist(), r.rank, r.sigma_min_status
    ([3.0, 2.0], 3.0, 'exact')
    """
    gen = torch.Generator().manual_seed(seed)
    if op.dtype == torch.float32:
        rtol = max(rtol, FLOAT32_RTOL)
    k = max(1, min(k, op.m, op.n))
    item = op.x.element_size()
    cap = max_steps_for(op.m, op.n, item, max_bytes) if max_steps is None else max_steps
    cap = min(cap, 10 * k + 300) if max_steps is None else cap
    first = max(3 * k, 60) if min_steps is None else min_steps
    gk = GolubKahan(op, gen, max(cap, k), bar)
    steps = first
    while True:
        bd = gk.run(steps)
        theta, res, bound = ritz(bd)
        top_ok = len(theta) >= min(k, bd.steps) and bool(np.all(bound[:k] <= rtol * theta[:k]))
        if bd.exhausted or top_ok or bd.steps >= gk.max_steps:
            break
        more = min(gk.max_steps, bd.steps + max(10, bd.steps // 4))
        if bar is not None and bar.total is not None:
            bar.total += more - steps
            bar.refresh()
        steps = more
    eps = torch.finfo(op.dtype).eps
    sigma1 = float(theta[0]) if len(theta) else 0.0
    tau = max(op.m, op.n) * eps * sigma1
    nonzero = theta > tau
    top = np.zeros(k)
    top_bound = np.zeros(k)
    kk = min(k, int(nonzero.sum()) if bd.exhausted else len(theta))
    top[:kk], top_bound[:kk] = theta[:kk], bound[:kk]
    converged = bool(bd.exhausted or np.all(bound[:kk] <= rtol * np.maximum(theta[:kk], tau)))
    if bd.exhausted:
        rank = float(nonzero.sum())
        top_bound[:kk] = np.maximum(top_bound[:kk], max(op.m, op.n) * eps * sigma1)
    # Certified nonzero: a singular value lies in [θ - r, θ + r] with θ - r > τ. (Rounding lets the
    # basis drift out of the row space, so an unconverged Ritz value may sit near 0: not certified.)
    certified = nonzero & (theta - res > tau)
    rank_lo = float(nonzero.sum()) if bd.exhausted else float(certified.sum())
    rank_hi = float(nonzero.sum()) if bd.exhausted else float(min(op.m, op.n) if max_rank is None
                                                              else min(op.m, op.n, max_rank))
    if bd.exhausted and nonzero.any():
        i = int(np.flatnonzero(nonzero)[-1])
        smin, sbound, status = float(theta[i]), max(op.m, op.n) * eps * sigma1, "exact"
    elif certified.any():
        cand = np.flatnonzero(certified)
        i = int(cand[np.argmin(theta[cand] + res[cand])])
        smin, sbound = float(theta[i]), float(bound[i])
        smallest = i == int(np.flatnonzero(nonzero)[-1])
        status = "resolved" if sbound <= rtol * smin and smallest else "upper bound"
        if status == "upper bound":
            sbound = float(res[i])  # sigma_min <= smin + sbound
    else:
        smin, sbound, status = float("nan"), float("nan"), "exact" if bd.exhausted else "upper bound"
    density = None
    t_density = time.perf_counter()
    if probes > 0 and sigma1 > 0:
        density = slq(op, probes, slq_steps, gen, sigma1, max_bytes / 2, bar)
    t_density = time.perf_counter() - t_density
    if bd.exhausted:
        rank_se = 0.0
    elif density is not None:
        rank = op.n * (1.0 - density.zero_mass)
        rank_se = op.n * density.zero_mass_se
        rank = float(np.clip(rank, rank_lo, rank_hi))
    else:
        rank, rank_se = rank_lo, float("nan")  # a lower bound
    cond = sigma1 / smin if smin == smin else float("nan")
    return MatfreeSpectrum(top, top_bound, converged, smin, sbound, status, rank, rank_se, bd.exhausted, cond,
                           bd.steps, op.products, density, rank_lo, rank_hi, density_seconds=t_density)


# -- functions of the input ------------------------------------------------------------
def chain_function(net, o) -> Callable[[torch.Tensor], torch.Tensor]:
    """Flat input -> flat output `o` (a chain layer's `pre` or `post`) of the ReluNet `net`."""
    shape, layers = net.input_shape, net.layers

    def f(x):
        h = x.reshape(1, *shape)
        for layer in layers[:o.layer]:
            h = layer(h)
        z = layers[o.layer].affine(h)
        return (z if o.stage == "pre" else layers[o.layer].activate(z)).reshape(-1)

    return f


def node_function(graph, o) -> Callable[[torch.Tensor], torch.Tensor]:
    """Flat input -> flat output of the graph node `o` (runs the graph up to that node)."""
    from ._graph_spectra import _run_upto

    shape, name, stop = graph.input_shape, o.name, o.layer + 1

    def f(x):
        return _run_upto(graph, x.reshape(1, *shape), {name}, stop)[name].reshape(-1)

    return f


def layer_spectra(target, xb: torch.Tensor, outs, graph: bool, k: int, rtol: float, probes: int, seed: int,
                  max_bytes: float, reason: str, steps: int = SLQ_STEPS,
                  max_steps: int | None = None) -> list:
    """A `LayerSpectrum` (method `lanczos`, `estimated=True`) per output in `outs`, for every
    sample of the batch `xb` (already in the target's dtype and device), with a progress bar
    per output (Golub–Kahan steps, then density steps). `steps`: Lanczos steps per density
    probe; `max_steps`: at most this many Golub–Kahan steps for the top k (default: by memory)."""
    from .._progress import progress
    from ._spectra import LayerSpectrum

    n = math.prod(target.input_shape)
    per: dict[int, list[MatfreeSpectrum]] = {j: [] for j in range(len(outs))}
    active: dict[int, list[int]] = {j: [] for j in range(len(outs))}
    for b in range(xb.shape[0]):
        x1 = xb[b]
        with torch.no_grad():
            if graph:
                values = target.run(x1.unsqueeze(0))
            else:
                trace = target.trace(x1.unsqueeze(0))
        for j, o in enumerate(outs):
            relu, bound = False, None  # a ReLU's zero units are zero rows: rank <= active units
            if graph:
                node = target.nodes[o.layer]
                if node.op == "activation" and node.kind in ("relu", "leaky_relu"):
                    active[j].append(int((values[node.inputs[0]] > 0).sum()))
                    relu = node.kind == "relu"
            elif target.layers[o.layer].activation in ("relu", "leaky_relu"):
                active[j].append(int((trace.pre[o.layer] > 0).sum()))
                relu = o.stage == "post" and target.layers[o.layer].activation == "relu"
            if relu:
                bound = active[j][-1]
            f = node_function(target, o) if graph else chain_function(target, o)
            first = max(3 * min(k, o.size, n), 60)
            if max_steps is not None:
                first = min(first, max_steps)
            where = f" {b + 1}/{xb.shape[0]}" if xb.shape[0] > 1 else ""
            t0 = time.perf_counter()
            with progress(desc=f"lanczos {o.name}{where}", total=first + (steps if probes else 0)) as bar:
                bar.probes = probes
                r = matfree_spectrum(JacobianOperator(f, x1), k=k, rtol=rtol, probes=probes, slq_steps=steps,
                                     max_steps=max_steps, seed=seed + SAMPLE_SEED_STRIDE * b + j,
                                     max_bytes=max_bytes, max_rank=bound, bar=bar)
            per[j].append(replace(r, seconds=time.perf_counter() - t0))
    result = []
    for j, o in enumerate(outs):
        rs = per[j]
        sv = np.stack([r.top for r in rs])
        result.append(LayerSpectrum(
            o, n, sv, np.array([int(round(r.rank)) for r in rs]), np.array([r.condition for r in rs]),
            np.array(active[j]) if active[j] else None, ("lanczos",) * len(rs),
            np.array([float(np.max(r.top_bound / np.where(r.top > 0, r.top, 1.0))) for r in rs]),
            estimated=True, method_reason=reason, matfree=tuple(rs)))
    return result


# -- which outputs go matrix-free -------------------------------------------------------
def stage_nodes(graph) -> list[str]:
    """The default outputs of a graph with a large input: the last ReLU node of each width
    (channels; for a ResNet the output of each stage) and the last node (the logits)."""
    last: dict[int, str] = {}
    for node in graph.relu_nodes():
        last[int(node.out_shape[0]) if node.out_shape else 0] = node.name
    return list(dict.fromkeys([*last.values(), graph.nodes[-1].name]))


def split_spectra(target, is_graph: bool, x: torch.Tensor, layers, dtype: torch.dtype, method: str,
                  rtol: float, chunk: int, max_bytes: float, k: int, probes: int, seed: int,
                  steps: int = SLQ_STEPS, max_steps: int | None = None,
                  matfree_dtype: torch.dtype | None = None):
    """`spectra` for `method` `auto` or `lanczos`: None when `auto` finds that every output's
    dense computation fits `max_bytes` (the caller then runs the exact path as before);
    else a `JacobianSpectra` whose outputs that fit (together) are exact and the rest are
    by `lanczos`, each with the reason in `method_reason` and a summary in `notes`.

    With an input of at least `LARGE_INPUT` values: the matrix-free outputs are computed in
    float32 unless `matfree_dtype` is given, and a graph's default outputs (`layers` None)
    are `stage_nodes` (each stage's output and the logits) rather than every node."""

    from ..errors import ConfigError
    from ._graph_spectra import cast, estimate_graph_bytes, graph_outputs
    from ._jacobians import as_batch, as_net, input_chunks, outputs
    from ._spectra import JacobianSpectra, estimate_bytes, spectra

    if k < 1 or probes < 0:
        raise ConfigError(f"k must be at least 1 and probes at least 0, got k={k}, probes={probes}")
    start = time.perf_counter()
    target = cast(target, dtype) if is_graph else as_net(target, x, dtype)
    xb = as_batch(target, x, dtype)
    outs = graph_outputs(target, layers) if is_graph else outputs(target, layers)
    n = math.prod(target.input_shape)
    item = torch.tensor([], dtype=dtype).element_size()
    mib = 2**20
    groups: dict[int, list] = {}
    for o in outs:
        groups.setdefault(o.layer, []).append(o)
    chunks = input_chunks(target.input_shape, chunk)

    def estimate(keys) -> float:
        picked = [o for key in keys for o in groups[key]]
        if item * max(min(o.size, n) ** 2 for o in picked) > max_bytes:  # one Gram matrix is over already
            return float(item * max(min(o.size, n) ** 2 for o in picked))
        if is_graph:
            return estimate_graph_bytes(target, picked, chunks, dtype, torch.get_num_threads())
        return estimate_bytes(target, picked, chunks, dtype)

    large = n >= LARGE_INPUT
    if method == "auto" and estimate(list(groups)) <= max_bytes:
        return None
    notes: list[str] = []
    restricted = layers is None and is_graph and large
    if restricted:
        outs = graph_outputs(target, stage_nodes(target))
        groups = {}
        for o in outs:
            groups.setdefault(o.layer, []).append(o)
        notes.append(f"input of {n:,} values: default outputs are the last ReLU of each width and the "
                     f"output ({', '.join(o.name for o in outs)}); pass layers= for others")
    if method == "lanczos":
        exact, why = [], {key: "asked for (method='lanczos')" for key in groups}
    elif estimate(list(groups)) <= max_bytes:  # the stage outputs fit together
        exact, why = list(groups), {}
    else:
        single = {key: estimate([key]) for key in groups}
        exact = sorted((key for key in groups if single[key] <= max_bytes), key=lambda key: single[key])
        while exact and estimate(exact) > max_bytes:
            exact.pop()  # the largest
        why = {key: (f"auto: the dense Jacobian spectra need about {single[key] / mib:,.0f} MiB, over the "
                     f"limit of {max_bytes / mib:,.0f} MiB" if single[key] > max_bytes else
                     f"auto: fits alone ({single[key] / mib:,.0f} MiB) but not with the other exact outputs")
               for key in groups if key not in exact}
    layers_out = []
    if exact:
        part = spectra(target, xb, layers=exact, dtype=dtype, method="exact", rtol=rtol, chunk=chunk,
                       max_bytes=max_bytes)
        layers_out += list(part.layers)
        notes += list(part.notes)
    rest = [o for key in groups if key not in exact for o in groups[key]]
    mf_dtype = matfree_dtype or (torch.float32 if large else dtype)
    if rest and mf_dtype != dtype:
        target = cast(target, mf_dtype) if is_graph else as_net(target, x, mf_dtype)
        xb = as_batch(target, x, mf_dtype)
    for key in groups:
        if key in exact:
            continue
        layers_out += layer_spectra(target, xb, groups[key], is_graph, k, rtol, probes, seed, max_bytes,
                                    why[key], steps=steps, max_steps=max_steps)
    layers_out.sort(key=lambda s: s.output.index)
    rtol_mf = max(rtol, FLOAT32_RTOL) if mf_dtype == torch.float32 else rtol
    notes.append(f"{len(layers_out) - len(rest)} output(s) exact, {len(rest)} matrix-free (lanczos in "
                 f"{str(mf_dtype).replace('torch.', '')}: top {k} singular values to rtol {rtol_mf:g}, "
                 f"density from {probes} probes × {steps} steps); estimated figures are marked `estimated`")
    if rest and mf_dtype == torch.float32:
        d = max(n, max(o.size for o in rest))
        notes.append(f"float32: the density counts eigenvalues of J^T J below d·eps·λ_max as zero, so the "
                     f"rank estimates count singular values above about sqrt(d·eps)·σ_1 ≈ "
                     f"{math.sqrt(d * torch.finfo(torch.float32).eps):.2g}·σ_1 (coarse); pass dtype=float64 "
                     "for a finer count (about 2× the time)")
    return JacobianSpectra(tuple(layers_out), xb.shape[0], tuple(target.input_shape),
                           str(dtype).replace("torch.", ""), method, rtol, time.perf_counter() - start,
                           notes=tuple(notes))
