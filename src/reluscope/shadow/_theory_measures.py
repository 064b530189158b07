"""Measures for Theorems 3.1 / 3.2 (Arora, Liang, Ma 2015): where the theorem says something.

Each function is one measure, testable against a closed form:
- `theorem_conditions`: the theorem's hypotheses `k_top < ... < k_1 < k_0 < k_top²` (and
  `sqrt(k_3) k_2 < k_0` for 3 layers), each with its value and limit, plus the condition on
  the top code that no coordinate is much larger than the average nonzero,
  `max_i h_i <= spread · τ` (the paper asks for it without a constant; `SPREAD` is ours);
- `relative_bound` / `coordinate_bound`: the proof's bound with the project's constants.
  The top layer is reversed with `δ = 2 sqrt(ln n_top / k_below)` (the `theory` offset), which
  leaves at most `2δ||h||` on each of the `k_top` nonzeros, so
  `||h~ - h||²/||h||² <= k_top (2δ)² = 16 (k_top/k_below) ln n_top`; per nonzero coordinate
  `|h~_i - h_i|²/τ² <= 16 ln(n_top)/k_below · ||h||²/τ²`. The trivial answer `h~ = 0` has
  relative error 1, so the bound predicts something only where it is below 1;
- `errors_on_off_support`, `coordinate_errors`, `support_recovery`: what the error is made of;
- `saturated` / `unsaturated_slope`: the slope fit over the points the threshold has not
  saturated (error still well below that of `h~ = 0`);
- `bound_check`, `needed_k_below`, `k_below_cap`, `regime`: where the bound is below 1, whether
  the error is within it; how far a sweep is from there, and whether the conditions allow it.
"""

from __future__ import annotations

import math

import torch

from ._theory import loglog_slope

SPREAD = 3.0  # "no coordinate much larger than average": max_i h_i <= SPREAD · τ (our constant)
SATURATION = 0.5  # a run is saturated when its relative error is >= this fraction of h~ = 0's


def code_tau(h: torch.Tensor) -> torch.Tensor:
    """τ per code (row): the mean of its nonzero entries, shape `(B, 1)` (1 for an all-zero row)."""
    h = h.flatten(1).double()
    nnz = (h != 0).sum(1, keepdim=True)
    return torch.where(nnz > 0, h.sum(1, keepdim=True) / nnz.clamp(min=1), torch.ones_like(h[:, :1]))


def _condition(name: str, value: float, limit: float, holds: bool) -> dict:
    return dict(name=name, value=float(value), limit=float(limit), holds=bool(holds))


def theorem_conditions(k0: int, k1: int, k2: int, k3: int | None = None, h: torch.Tensor | None = None,
                       spread: float = SPREAD) -> list[dict]:
    """The hypotheses of Theorem 3.1 (`k3=None`) or 3.2, one dict each: name, value, limit, holds.

    Theorem 3.1: `k2 < k1`, `k1 < k0`, `k0 < k2²`. Theorem 3.2: `k3 < k2`, `k2 < k1`, `k1 < k0`,
    `k0 < k3²`, `sqrt(k3) k2 < k0`. With codes `h` (rows, top layer): `max h / τ <= spread`, the
    largest ratio over the rows of a code's largest entry to its mean nonzero τ.

    >>> [c["name"] for c in theorem_conditions(1000, 200, 40) if not c["holds"]]
    []
    >>> [c["name"] for c in theorem_conditions(2000, 200, 40) if not c["holds"]]
    ['k0 < k2^2']
    """
    ks = [k0, k1, k2] + ([k3] if k3 is not None else [])
    top = len(ks) - 1
    out = [_condition(f"k{j + 1} < k{j}", ks[j + 1], ks[j], ks[j + 1] < ks[j])
           for j in range(top - 1, -1, -1)]
    out.append(_condition(f"k0 < k{top}^2", k0, ks[top] ** 2, k0 < ks[top] ** 2))
    if k3 is not None:
        lhs = math.sqrt(k3) * k2
        out.append(_condition("sqrt(k3) k2 < k0", lhs, k0, lhs < k0))
    if h is not None:
        hd = h.flatten(1).double()
        ratio = float((hd.max(1, keepdim=True).values / code_tau(hd)).max())
        out.append(_condition(f"max h <= {spread:g} tau", ratio, spread, ratio <= spread))
    return out


def failing(conditions: list[dict]) -> list[str]:
    """Names of the conditions that do not hold."""
    return [c["name"] for c in conditions if not c["holds"]]


def relative_bound(k_top: int, k_below: int, n_top: int) -> float:
    """The proof's bound on `||h~ - h||²/||h||²` with our constants: `16 (k_top/k_below) ln n_top`.

    >>> round(relative_bound(64, 2048, 512), 2)  # k/t = 1/32 at n_2 = 512: above 1, predicts nothing
    3.12
    """
    return 16.0 * k_top / k_below * math.log(n_top)


def coordinate_bound(h: torch.Tensor, k_below: int, n_top: int) -> float:
    """The bound on the theorem's per-coordinate `E|h~_i - h_i|²/τ²` for i in the support:
    `(2δ||h||)²/τ² = 16 ln(n_top)/k_below · ||h||²/τ²`, averaged over the codes (rows)."""
    hd = h.flatten(1).double()
    spread = hd.pow(2).sum(1, keepdim=True) / code_tau(hd) ** 2
    return float(16.0 * math.log(n_top) / k_below * spread.mean())


def errors_on_off_support(h: torch.Tensor, h_est: torch.Tensor) -> dict[str, float]:
    """`||h~ - h||²/||h||²` split into the part on the support of h and the part off it (mean over rows).

    `on + off == total` exactly; `off` is `Σ_{h_i = 0} h~_i² / ||h||²` (false activations).

    >>> import torch
    >>> errors_on_off_support(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
    {'on': 0.25, 'off': 0.25, 'total': 0.5}
    """
    hd, he = h.flatten(1).double(), h_est.flatten(1).double()
    on_mask = hd != 0
    norm = hd.pow(2).sum(1).clamp(min=1e-300)
    sq = (he - hd).pow(2)
    on = (sq * on_mask).sum(1) / norm
    off = (sq * ~on_mask).sum(1) / norm
    return dict(on=float(on.mean()), off=float(off.mean()), total=float((on + off).mean()))


def coordinate_errors(h: torch.Tensor, h_est: torch.Tensor) -> dict[str, float]:
    """The theorem's per-coordinate quantity `|h~_i - h_i|²/τ²` (τ per code), averaged over every
    coordinate (`all`), over the support of h (`on`) and off it (`off`)."""
    hd, he = h.flatten(1).double(), h_est.flatten(1).double()
    sq = (he - hd).pow(2) / code_tau(hd) ** 2
    on_mask = hd != 0
    on = float(sq[on_mask].mean()) if on_mask.any() else math.nan
    off = float(sq[~on_mask].mean()) if (~on_mask).any() else math.nan
    return dict(all=float(sq.mean()), on=on, off=off)


def support_recovery(h: torch.Tensor, h_est: torch.Tensor, top: int | None = None) -> tuple[float, float]:
    """Precision and recall of the recovered support, averaged over codes (rows).

    The estimated support of a row is its `top` largest entries that are positive (default
    `top`: the number of nonzeros of h in that row); the true support the nonzeros of h.
    precision = |estimated ∩ true| / |estimated| (0 when nothing is estimated),
    recall = |estimated ∩ true| / |true|.

    >>> import torch
    >>> support_recovery(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.tensor([[0.9, 0.0, 0.8, 0.0]]))
    (0.5, 0.5)
    """
    hd, he = h.flatten(1).double(), h_est.flatten(1).double()
    true = hd != 0
    n_top = true.sum(1) if top is None else torch.full((hd.shape[0],), int(top))
    order = torch.argsort(he, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(he.shape[1]).expand_as(order))
    est = (rank < n_top[:, None]) & (he > 0)
    hits = (est & true).sum(1).double()
    precision = torch.where(est.sum(1) > 0, hits / est.sum(1).clamp(min=1), torch.zeros_like(hits))
    recall = hits / true.sum(1).clamp(min=1)
    return float(precision.mean()), float(recall.mean())


def saturated(errors, ceiling: float = 1.0, fraction: float = SATURATION) -> list[bool]:
    """Which errors are saturated: at or above `fraction` of the trivial error `ceiling` (1 for the
    relative error of `h~ = 0`), where the threshold's log factors, not the ratio, set the error."""
    return [not (e < fraction * ceiling) for e in errors]


def unsaturated_slope(ratios, errors, ceiling: float = 1.0, fraction: float = SATURATION,
                      keep=None) -> tuple[float, float, int]:
    """Log-log slope and intercept of error on ratio over the unsaturated points, and their count.

    `keep` (optional booleans) drops further points (e.g. runs outside the theorem's conditions).
    The slope is NaN with fewer than two distinct unsaturated ratios.
    """
    keep = [True] * len(errors) if keep is None else list(keep)
    sat = saturated(errors, ceiling, fraction)
    pts = [(r, e) for r, e, s, k in zip(ratios, errors, sat, keep) if k and not s]
    slope, icpt = loglog_slope([p[0] for p in pts], [p[1] for p in pts])
    return slope, icpt, len(pts)


def seed_means(runs: list[dict]) -> list[dict]:
    """The runs of a multilayer sweep averaged over seeds, one per `ks` (in sweep order): every
    number and every rule's number is the mean; `conditions` and `holds` of the first seed but
    with `holds` false if it fails for any seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(tuple(r["ks"]), []).append(r)
    out = []
    for ks, rs in groups.items():
        row = dict(ks=list(ks), seeds=len(rs), holds=all(r["holds"] for r in rs),
                   conditions=[dict(c, holds=all(r["conditions"][i]["holds"] for r in rs))
                               for i, c in enumerate(rs[0]["conditions"])])
        for key, val in rs[0].items():
            if isinstance(val, dict):
                row[key] = {k: sum(r[key][k] for r in rs) / len(rs) for k in val}
            elif isinstance(val, (int, float)) and not isinstance(val, bool) and key not in ("seed",):
                row[key] = sum(r[key] for r in rs) / len(rs)
        out.append(row)
    return out


def bound_check(runs: list[dict], rule: str = "best") -> dict:
    """The proof's bound where it says something: over the runs that meet the theorem's conditions
    and whose bound `16 (k_top/k_below) ln n_top` is below 1 (h~ = 0's relative error), how many
    have `relative[rule] <= bound`.

    Returns `runs` (how many such runs), `within` (how many within the bound), `worst` (the largest
    error / bound among them; NaN without such runs) and `smallest` (the smallest bound of all runs).

    >>> runs = [dict(holds=True, bound=0.9, relative={"best": 0.3}), dict(holds=True, bound=3.0,
    ...         relative={"best": 0.5}), dict(holds=False, bound=0.5, relative={"best": 0.9})]
    >>> bound_check(runs)
    {'runs': 1, 'within': 1, 'worst': 0.3333333333333333, 'smallest': 0.5}
    """
    told = [r for r in runs if r["holds"] and r["bound"] < 1]
    ratios = [r["relative"][rule] / r["bound"] for r in told]
    return dict(runs=len(told), within=sum(x <= 1 for x in ratios), worst=max(ratios) if ratios else math.nan,
                smallest=min((r["bound"] for r in runs), default=math.nan))


def needed_k_below(run: dict) -> float:
    """The `k_below` above which the proof's bound falls below 1: `16 k_top ln n_top` (from a run's
    bound: `bound · k_below`)."""
    return run["bound"] * run["ks"][1]


def k_below_cap(k_top: int, depth: int) -> float:
    """The largest `k_below` the theorem's conditions allow: `k_top²` for Theorem 3.1
    (`k_1 < k_0 < k_2²`), `k_top^1.5` for Theorem 3.2 (`sqrt(k_3) k_2 < k_0 < k_3²`).

    >>> k_below_cap(128, 2), round(k_below_cap(128, 3))
    (16384, 1448)
    """
    return k_top ** 2 if depth == 2 else k_top ** 1.5


def regime(runs: list[dict], fraction: float = SATURATION) -> str:
    """Which regime a multilayer sweep is in, in words: does the proof's bound beat h~ = 0 anywhere
    (and if not, how far k_below is from the `16 k_top ln n_top` that needs, and whether the
    theorem's conditions allow it at all), do the theorem's conditions hold, and how many runs are
    not saturated (best offset)."""
    informative = sum(r["bound"] < 1 for r in runs)
    ok = sum(r["holds"] for r in runs)
    unsat = sum(not s for s in saturated([r["relative"]["best"] for r in runs], 1.0, fraction))
    need = needed_k_below(runs[0])
    k_top, depth = runs[0]["ks"][0], len(runs[0]["ks"]) - 1
    largest = max(r["ks"][1] for r in runs)
    cap = k_below_cap(k_top, depth)
    if informative:
        bound = (f"the proof's bound is below 1 (h̃ = 0's error) at {informative} of {len(runs)} runs "
                 f"(k_below > 16 k_top ln n_top = {need:.0f}): the theorem predicts a number there")
    else:
        bound = (f"the proof's bound is ≥ 1 (h̃ = 0's error) at every run (smallest "
                 f"{min(r['bound'] for r in runs):.2f}): k_below is at most {largest / need:.2g} × "
                 f"16 k_top ln n_top = {need:.0f}")
        if cap <= need:
            bound += (f" and the theorem's conditions cap it at {cap:.0f} (k_top = {k_top}), where the bound "
                      "is still above 1")
        bound += "; the theorem predicts nothing at these sizes and the measured trend is shown"
    return (f"{bound}; the theorem's conditions hold at {ok} of {len(runs)} runs; {unsat} runs are "
            f"unsaturated (best relative error < {fraction:g})")
