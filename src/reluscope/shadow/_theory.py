"""Theorems 1, 3.1 and 3.2 of Arora, Liang, Ma (2015), checked on Gaussian layers.

Protocol (the paper's constants are unknown, so these are choices, all parameters):
- weights `W_ij ~ N(0, 1)`, no bias; `α = 2/t` ("paper" scale), dropout keeps with `ρ = t/n`;
- codes with exactly k nonzeros at uniform positions, values `Uniform(0.5, 1.5)` (τ ≈ 1);
- one Gaussian net and one batch of codes per seed; the error of a run is the mean over
  its codes; the slope is a least-squares fit of `log error` on `log(k/t)` over every run.

Cost (the full mode's layers reach 32768 x 16384): the products run in float32 (the threshold
search and the measures in float64), weights are drawn in chunks straight into the layers and
redrawn in place for each seed (no second copy, no new net), Theorem 1 draws one layer per
(n, k, seed) for every t, and the bottom product of the forward pass is shared by the three
offset rules. Results are identical to drawing a fresh net per run. Progress bars count runs.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .._display import Tabular
from .._frames import frame
from .._progress import progress
from ..errors import ConfigError
from ._reversibility import best_threshold, reversibility
from ._sampler import sample_chain

THEOREM_RULES = ("none", "theory", "best")


_CHUNK = 1 << 24  # Gaussian numbers drawn per chunk (64 MiB of float32)


def fill_gaussian(weight: torch.Tensor, generator: torch.Generator, chunk: int = _CHUNK) -> None:
    """Fill a 2-D `weight` in place with N(0, 1) numbers, drawn as float32 on the CPU from
    `generator` in row chunks of about `chunk` numbers (a multiple of 16 rows, so the stream is
    that of one `torch.randn(*weight.shape, generator=generator)`) and copied to the weight's
    dtype and device: no second full-size copy of a large layer is ever held."""
    b, a = weight.shape
    rows = max(16, chunk // max(a, 1) // 16 * 16)
    cuts = list(range(0, b, rows)) + [b]
    if len(cuts) > 2 and (b - cuts[-2]) * a < 16:  # a last chunk under 16 numbers: join it to the one before
        del cuts[-2]
    with torch.no_grad():
        for i, j in zip(cuts[:-1], cuts[1:]):
            weight[i:j].copy_(torch.randn(j - i, a, generator=generator))


def gaussian_net(widths: list[int], generator: torch.Generator, dtype=torch.float32, device="cpu"):
    """A bias-free ReLU MLP `widths[0] -> ... -> widths[-1]` with N(0, 1) weights, as a ReluNet.

    The weights are those of `torch.randn(b, a, generator=generator)` layer by layer (bottom
    first), drawn in chunks straight into the layer (no default initialisation first)."""
    from .. import nets

    mods: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        lin = nn.utils.skip_init(nn.Linear, a, b, bias=False, device=device, dtype=dtype)
        fill_gaussian(lin.weight, generator)
        mods += [lin, nn.ReLU()]
    return nets.load(nn.Sequential(*mods), input_shape=(widths[0],))


def refill_gaussian(net, generator: torch.Generator) -> None:
    """Redraw the weights of a `gaussian_net` in place: the same net as a fresh
    `gaussian_net(widths, generator)` without building (and checking) a new one."""
    for lay in net.layers:
        fill_gaussian(lay.module.weight, generator)


class _NetCache:
    """One Gaussian net per width list, redrawn in place for each new generator."""

    def __init__(self, dtype, device):
        self.dtype, self.device, self.net, self.widths = dtype, device, None, None

    def get(self, widths: list[int], generator: torch.Generator):
        if self.net is not None and self.widths == list(widths):
            refill_gaussian(self.net, generator)
        else:
            self.net = None  # free the old weights before drawing new ones
            self.net = gaussian_net(list(widths), generator, self.dtype, self.device)
            self.widths = list(widths)
        return self.net


def sparse_codes(batch: int, m: int, k: int, generator: torch.Generator, dtype=torch.float32,
                 device="cpu") -> torch.Tensor:
    """`batch` nonnegative codes in R^m with exactly k nonzeros drawn from Uniform(0.5, 1.5)."""
    if not 0 < k <= m:
        raise ConfigError(f"sparsity k={k} must be in 1..{m}")
    pos = torch.rand(batch, m, generator=generator).topk(k, dim=1).indices
    vals = torch.rand(batch, k, generator=generator) + 0.5
    h = torch.zeros(batch, m).scatter_(1, pos, vals)
    return h.to(device=device, dtype=dtype)


def loglog_slope(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of `log y` against `log x` (NaN with < 2 distinct x)."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y) if a > 0 and b > 0]
    if len({p[0] for p in pts}) < 2:
        return math.nan, math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    slope = sxy / sxx
    return slope, my - slope * mx


@dataclass(frozen=True)
class Theorem1Result(Tabular):
    """The single-layer sweep: one row per run (n, m, k, t, seed, errors per rule, bound).

    `slopes[rule]` is the fitted log-log slope of error against k/t (theory: about 1);
    `tail_slopes[rule]` the same fit over the runs with k/t <= 1/16 only, away from the
    saturation near error 1 where large k/t flattens the curve;
    `within_bound[rule]` the fraction of runs with error <= `16 (k/t) ln m` (the proof's
    `k (2δ)²` with the `δ` of the theory rule; loose at these sizes).
    """

    runs: list[dict]
    slopes: dict[str, float]
    intercepts: dict[str, float]
    within_bound: dict[str, float]
    config: dict = field(default_factory=dict)
    tail_slopes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self):
        """One row per run: `n`, `m`, `k`, `t`, `ratio` (k/t), `seed`, `theta`, `delta`, `error_rel_bound`
        (the proof's bound) and `error_rel_<rule>` (relative squared error per offset rule)."""
        return frame([_run_row(r, "errors", "error_rel", bound="error_rel_bound") for r in self.runs])

    def _figures(self):
        from ._plots import plot_theorem1

        yield plot_theorem1(self), "Theorem 1: relative error against k/t"


def _run_row(run: dict, key: str, prefix: str, **rename) -> dict:
    """A run's scalars with `run[key][rule]` as `<prefix>_<rule>` and the keys of `rename` renamed."""
    row = {rename.get(k, k): v for k, v in run.items() if not isinstance(v, (dict, list))}
    row.update({f"{prefix}_{r}": v for r, v in run[key].items()})
    return row


def theorem1(ns=(2048,), ks=(32, 64), ratios=(1 / 4, 1 / 8, 1 / 16, 1 / 32), seeds: int = 3,
             codes: int = 64, m: int | None = None, exact_k: bool = False, seed: int = 0,
             dtype=torch.float32, device="cpu") -> Theorem1Result:
    """Sweep n, k and t = k / ratio in the regime `k < t < k²`, `t <= n`; measure reversibility.

    Arguments:
        ns: input sizes n (the hidden size m is `m` or n).
        ks: code sparsities k; ratios: the values of k/t to try.
        seeds: runs per point (a fresh Gaussian layer and fresh codes each).
        codes: codes per run.

    Returns:
        A `Theorem1Result`.
    """
    cells = [(n, k, k / r) for n in ns for k in ks for r in ratios
             if k < k / r < k * k and k / r <= n and float(k / r).is_integer()]
    if not cells:
        raise ConfigError("no (n, k, t) in the regime k < t < k², t <= n; widen ks, ratios or ns")
    # The layer and codes of a run depend on (n, k, seed) only: draw them once and run every t on
    # them, restoring the generator to where each run used to start (same numbers as one per run).
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for i, (n, k, t) in enumerate(cells):
        groups.setdefault((n, k), []).append((i, t))
    found: dict[tuple[int, int], dict] = {}
    nets = _NetCache(dtype, device)
    bar = progress(desc="theorem 1", total=len(cells) * seeds)
    for (n, k), ts in groups.items():
        mm = m or n
        for s in range(seeds):
            gen = torch.Generator().manual_seed(seed * 100003 + s * 7919 + n * 31 + k)
            net = nets.get([n, mm], gen)
            h = sparse_codes(codes, mm, k, gen, dtype, device)
            state = gen.get_state()
            for i, t in ts:
                bar.set_postfix_str(f"n {n}, k {k}, t {t:g}", refresh=False)
                gen.set_state(state)
                rev = reversibility(net, h, layer=0, rho=t / n, alpha="paper", exact_k=exact_k, generator=gen)
                found[i, s] = dict(n=n, m=mm, k=k, t=t, ratio=k / t, seed=s,
                                   errors={r: rev.errors[r] for r in THEOREM_RULES}, theta=rev.theta,
                                   delta=rev.delta, bound=16 * k / t * math.log(mm))
                bar.update()
    bar.close()
    runs = [found[key] for key in sorted(found)]  # cell by cell, seeds within a cell
    slopes, intercepts, within, tail = {}, {}, {}, {}
    small = [r for r in runs if r["ratio"] <= 1 / 16 + 1e-12]
    for rule in THEOREM_RULES:
        tail[rule] = loglog_slope([r["ratio"] for r in small], [r["errors"][rule] for r in small])[0]
        slopes[rule], intercepts[rule] = loglog_slope([r["ratio"] for r in runs],
                                                      [r["errors"][rule] for r in runs])
        within[rule] = sum(r["errors"][rule] <= r["bound"] for r in runs) / len(runs)
    config = dict(ns=list(ns), ks=list(ks), ratios=list(ratios), seeds=seeds, codes=codes, m=m,
                  exact_k=exact_k, seed=seed, dtype=str(dtype))
    return Theorem1Result(runs, slopes, intercepts, within, config, tail)


@dataclass(frozen=True)
class MultilayerResult(Tabular):
    """Theorems 3.1 / 3.2: error of the top code after sampling down and going back up.

    Each run has `ks` (top first), the ratio `k_top / k_below`, and per rule `eps`:
    `mean_i E|h~_i - h_i|² / τ²` over the top units (τ the mean nonzero of each code), plus
    the relative error `||h~ - h||²/||h||²` (`relative`; that of `h~ = 0` is 1), and `eps_zero`,
    the eps of the trivial guess `h~ = 0` (an error at or above it means nothing was recovered).
    Measures of `_theory_measures` per rule: `on_support` / `off_support` (the relative error
    split on and off the support of h), `eps_on` (the theorem's per-coordinate quantity on the
    support; `eps_on_zero` that of h~ = 0, `eps_on_bound` the proof's bound), `precision` /
    `recall` (support recovery from the top k_top entries), `linear` (the relative error of the
    top layer's pre-activation with the best offsets below: what the threshold starts from);
    `bound` (the proof's `16 (k_top/k_below) ln n_top` on the relative error) and
    `conditions` (the theorem's hypotheses, each with value, limit, holds; `holds` all of them).

    `slopes[rule]` fits log relative error on log ratio over the runs that satisfy the
    conditions and are not saturated (relative error below `SATURATION`, i.e. well below h~ = 0);
    `fitted[rule]` counts those runs, `slopes_all[rule]` fits every run.
    """

    depth: int
    runs: list[dict]
    slopes: dict[str, float]
    config: dict = field(default_factory=dict)
    slopes_all: dict[str, float] = field(default_factory=dict)
    fitted: dict[str, int] = field(default_factory=dict)

    @property
    def design(self) -> str:
        """What the sweep holds fixed below the swept sparsity, in words (e.g. `k1/k0 = 0.25 fixed`)."""
        if self.config.get("k_bottom") is not None:
            return f"k0 = {self.config['k_bottom']} fixed"
        ratio = self.config.get("k_ratio")
        if ratio is None:
            return ""
        return ("k1/k0" if self.depth == 2 else "k2/k1 = k1/k0") + f" = {ratio:.3g} fixed"

    def to_dict(self) -> dict:
        return asdict(self)

    def to_frame(self):
        """One row per run: `depth`, `ks` (top first, joined by '-'), `k_top`, `ratio`, `seed`, `eps_zero`,
        `bound`, `eps_on_zero`, `eps_on_bound`, `holds` (all conditions), `failing` (names joined by
        '; '), `linear`, and per offset rule `eps_<rule>` (the theorems' eps), `error_rel_<rule>`,
        `on_support_<rule>`, `off_support_<rule>`, `eps_on_<rule>`, `precision_<rule>`, `recall_<rule>`."""
        rows = []
        for r in self.runs:
            row = dict(depth=self.depth, ks="-".join(map(str, r["ks"])), k_top=r["ks"][0],
                       **_run_row(r, "eps", "eps"))
            row["failing"] = "; ".join(c["name"] for c in r.get("conditions", []) if not c["holds"])
            for key, prefix in (("relative", "error_rel"), ("on_support", "on_support"),
                                ("off_support", "off_support"), ("eps_on", "eps_on"),
                                ("precision", "precision"), ("recall", "recall")):
                row.update({f"{prefix}_{k}": v for k, v in r.get(key, {}).items()})
            rows.append(row)
        return frame(rows)

    def _figures(self):
        from ._plots import plot_multilayer

        yield plot_multilayer([self]), f"Theorem 3.{self.depth - 1}: top-layer error"


@contextmanager
def threads(n: int):
    """Run the block on `n` torch threads, then restore the count (cheap: no new pool)."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def one_thread():
    """Small tensor work (the threshold search, elementwise steps, the measures of a run) on one
    thread: on a busy 2-core machine OpenMP's barriers make such work many times slower on two
    threads (the measures of one run: 0.6 s against 0.01 s at load 6). The large products
    keep every thread (`threads(n)` around them)."""
    return threads(1)


def _offset(rule: str, z: torch.Tensor, target: torch.Tensor, rho: float, lay) -> torch.Tensor | float:
    """The offset of one layer under `rule` (z and target float64, rows = codes)."""
    c = target.norm(dim=1, keepdim=True).clamp(min=1e-30)
    if rule == "none":
        return 0.0
    if rule == "theory":
        t = rho * lay.in_shape[0]  # k_j: kept units of the layer's input
        return 2.0 * math.sqrt(math.log(lay.out_shape[0]) / t) * c
    theta, _ = best_threshold(z / c, target / c)  # exact 1-D search, where the codes are
    return theta * c


@torch.no_grad()
def _recover(net, levels: list[torch.Tensor], rhos: list[float],
             rules=THEOREM_RULES) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Feed the bottom sample forward; each layer's offset from the rule (best: greedy per layer).

    Returns per rule the top code h~ and the top layer's pre-activation (before offset and ReLU),
    both float64. The products run in the net's dtype (float32: the bottom one is the largest
    cost of a run) on every thread; the bottom layer's does not depend on the rule and is
    computed once; the rest (offsets, ReLU, float64 copies) runs on one thread."""
    n = torch.get_num_threads()
    depth = len(net.layers)
    first = net.layers[0]
    z0 = first.affine(levels[-1].to(first.weight.dtype), bias=False)
    out = {}
    with one_thread():
        z0 = z0.double()
        for rule in rules:
            cur = levels[-1]
            for j, lay in enumerate(net.layers):
                if j == 0:
                    z = z0
                else:
                    with threads(n):
                        z = lay.affine(cur.to(lay.weight.dtype), bias=False)
                    z = z.double()
                cur = torch.relu(z - _offset(rule, z, levels[depth - 1 - j].double(), rhos[j], lay))
            out[rule] = (cur, z)
    return out


def _ladder(depth: int, k_mid: int, k_top: int, k_bottom: int | None, k_ratio: float | None) -> list[int]:
    """The sparsities bottom first for one swept value `k_mid` (k_1, or k_2 for 3 layers)."""
    if k_ratio is not None:  # every ratio below the swept one fixed: k_{j}/k_{j-1} = k_ratio
        lower = [int(round(k_mid / k_ratio ** j)) for j in range(depth - 1, 0, -1)]
        return lower + [k_mid, k_top]
    if depth == 2:
        return [k_bottom, k_mid, k_top]
    return [k_bottom, int(round(math.sqrt(k_bottom * k_mid))), k_mid, k_top]


def multilayer(depth: int = 2, widths=None, k_bottom: int | None = None, k_top: int = 64,
               middle=None, seeds: int = 3, codes: int = 64, exact_k: bool = False,
               seed: int = 0, dtype=torch.float32, device="cpu", k_ratio: float | None = None,
               echo=None) -> MultilayerResult:
    """Sample a k_top-sparse code down a Gaussian net (eq. 4), feed it back, measure the top error.

    Arguments:
        depth: 2 (Theorem 3.1) or 3 (Theorem 3.2).
        widths: layer widths bottom first (`n_0, ..., n_depth`); default 4096, 2048, 512 (depth 2)
            and 4096, 2048, 1024, 512 (depth 3).
        k_top: k_depth.
        middle: values swept for k_1 (depth 2) or k_2 (depth 3).
        k_ratio: the ratio held fixed below the swept one, `k_1/k_0` (and `k_2/k_1` for depth 3):
            k_0 = k_1 / k_ratio. Holding it fixed keeps the lower layers' error from growing along
            the sweep. Default 1/4 (depth 2), 1/3 (depth 3: `sqrt(k_3) k_2 < k_0` needs
            `k_ratio² < 1/sqrt(k_3)`), unless `k_bottom` is given.
        k_bottom: a fixed k_0 instead (the older design; with depth 3, k_1 is then the geometric
            mean of k_0 and k_2).
        echo: a callable given one line per run (sizes, conditions, errors), e.g. `print`.

    Runs with some `k_j > n_j` are skipped; the others are run and carry the theorem's conditions
    (`_theory_measures.theorem_conditions`): `k_top < ... < k_0 < k_top²` (and
    `sqrt(k_3) k_2 < k_0`) and no coordinate of h much larger than the average nonzero. The
    slope is fitted over the runs where they hold and the error is not saturated.

    Returns:
        A `MultilayerResult`; the ratio swept is `k_top / k_{depth-1}`.
    """
    from . import _theory_measures as tm

    if depth not in (2, 3):
        raise ConfigError(f"depth must be 2 or 3, got {depth}")
    if k_bottom is not None and k_ratio is not None:
        raise ConfigError("give k_bottom (fixed k_0) or k_ratio (fixed k_1/k_0), not both")
    if k_bottom is None and k_ratio is None:
        k_ratio = 0.25 if depth == 2 else 1 / 3
    if k_ratio is not None and not 0 < k_ratio < 1:
        raise ConfigError(f"k_ratio must be in (0, 1), got {k_ratio}")
    middle = middle or ((96, 128, 192, 256, 384, 512, 768, 1000) if depth == 2
                        else (80, 96, 128, 192, 256, 320, 448))
    widths = list(widths or ([4096, 2048, 512] if depth == 2 else [4096, 2048, 1024, 512]))
    if len(widths) != depth + 1:
        raise ConfigError(f"give {depth + 1} widths for depth {depth}, got {widths}")
    cells = [ks for ks in (_ladder(depth, k, k_top, k_bottom, k_ratio) for k in middle)
             if all(0 < k <= n for k, n in zip(ks, widths))]
    conds = {tuple(ks): tm.theorem_conditions(*ks) for ks in cells}
    if not any(all(c["holds"] for c in cs) for cs in conds.values()):
        raise ConfigError("no k in 'middle' satisfies the theorem's constraints (k_top < ... < k_0 < "
                          "k_top², sqrt(k3) k2 < k0) within the widths; see the docstring")
    runs = []
    bar = progress(desc=f"theorem 3.{depth - 1} ({'/'.join(map(str, widths))})", total=seeds * len(cells))
    nets = _NetCache(dtype, device)
    for s in range(seeds):  # one Gaussian net and one batch of codes per seed, shared by the sweep
        gen = torch.Generator().manual_seed(seed * 100003 + s * 7919)
        net = nets.get(widths, gen)  # redrawn in place from the second seed on
        h = sparse_codes(codes, widths[-1], k_top, gen, dtype, device)
        hd = h.double().cpu()  # the measures run on the CPU in float64 (codes x n_top: small)
        with one_thread():  # what depends on the codes only: once per seed
            zero = float((hd ** 2 / tm.code_tau(hd) ** 2).mean())  # eps of the trivial guess h~ = 0
            eps_on_zero = tm.coordinate_errors(hd, torch.zeros_like(hd))["on"]
        for ks in cells:
            bar.set_postfix_str("k " + "/".join(map(str, ks[::-1])), refresh=False)
            rhos = [k / n for k, n in zip(ks, widths)]  # bottom first
            gen = torch.Generator().manual_seed(seed * 100003 + s * 7919 + ks[-2])
            levels = sample_chain(net, h, layer=depth - 1, rho=rhos[:-1][::-1], alpha="paper",
                                  exact_k=exact_k, generator=gen)
            recovered = _recover(net, levels, rhos)
            with one_thread():
                conditions = tm.theorem_conditions(*ks, h=hd)
                run = dict(ks=ks[::-1], ratio=k_top / ks[-2], seed=s, eps={}, relative={}, eps_zero=zero,
                           on_support={}, off_support={}, eps_on={}, precision={}, recall={},
                           bound=tm.relative_bound(k_top, ks[-2], widths[-1]), eps_on_zero=eps_on_zero,
                           eps_on_bound=tm.coordinate_bound(hd, ks[-2], widths[-1]),
                           holds=all(c["holds"] for c in conditions), conditions=conditions)
                for rule, (ht, z) in recovered.items():
                    ht, z = ht.cpu(), z.cpu()
                    if rule == "best":  # the error the best threshold starts from
                        run["linear"] = tm.errors_on_off_support(hd, z)["total"]
                    split, coord = tm.errors_on_off_support(hd, ht), tm.coordinate_errors(hd, ht)
                    run["eps"][rule] = coord["all"]
                    run["relative"][rule] = split["total"]
                    run["on_support"][rule], run["off_support"][rule] = split["on"], split["off"]
                    run["eps_on"][rule] = coord["on"]
                    run["precision"][rule], run["recall"][rule] = tm.support_recovery(hd, ht)
            runs.append(run)
            bar.update()
            if echo is not None:
                echo(describe_run(run, depth))
    bar.close()
    runs.sort(key=lambda r: (-r["ratio"], r["seed"]))
    slopes, slopes_all, fitted = {}, {}, {}
    ratios = [r["ratio"] for r in runs]
    for rule in THEOREM_RULES:
        errs = [r["relative"][rule] for r in runs]
        slopes[rule], _, fitted[rule] = tm.unsaturated_slope(ratios, errs, keep=[r["holds"] for r in runs])
        slopes_all[rule] = loglog_slope(ratios, errs)[0]
    config = dict(widths=widths, k_bottom=k_bottom, k_ratio=k_ratio, k_top=k_top, middle=list(middle),
                  seeds=seeds, codes=codes, exact_k=exact_k, seed=seed, dtype=str(dtype),
                  saturation=tm.SATURATION, spread=tm.SPREAD)
    return MultilayerResult(depth, runs, slopes, config, slopes_all, fitted)


def describe_run(run: dict, depth: int) -> str:
    """One line for a multilayer run: sizes, whether the theorem's conditions hold (naming those
    that fail), the bound, and the best-offset errors beside h~ = 0's."""
    names = [f"k{depth - i}" for i in range(depth + 1)]
    sizes = ", ".join(f"{n}={k}" for n, k in zip(names, run["ks"]))
    bad = [c["name"] for c in run["conditions"] if not c["holds"]]
    cond = "conditions hold" if not bad else "FAILS " + "; ".join(bad)
    return (f"theorem 3.{depth - 1} [{sizes}] ratio {run['ratio']:.4g}: {cond}; bound {run['bound']:.3g} "
            f"(h~=0: 1); best rel. error {run['relative']['best']:.3g} (on {run['on_support']['best']:.3g}"
            f" + off {run['off_support']['best']:.3g}), precision {run['precision']['best']:.2f}, "
            f"recall {run['recall']['best']:.2f}, eps_on {run['eps_on']['best']:.3g} "
            f"(bound {run['eps_on_bound']:.3g}, h~=0 {run['eps_on_zero']:.3g})")


@dataclass(frozen=True)
class TheoryResult(Tabular):
    """Theorem 1 sweep and the 2- and 3-layer experiments of one configuration."""

    theorem1: Theorem1Result
    multilayer: list[MultilayerResult]
    full: bool

    def to_dict(self) -> dict:
        return dict(full=self.full, theorem1=self.theorem1.to_dict(),
                    multilayer=[m.to_dict() for m in self.multilayer])

    def to_frame(self):
        """Every run, stacked: `experiment` (`theorem1`, `theorem3.1`, `theorem3.2`) then the run's
        columns (`Theorem1Result.to_frame`, `MultilayerResult.to_frame`; NaN where not applicable)."""
        from .._frames import pandas

        parts = [self.theorem1.to_frame().assign(experiment="theorem1")]
        parts += [m.to_frame().assign(experiment=f"theorem3.{m.depth - 1}") for m in self.multilayer]
        df = pandas().concat(parts, ignore_index=True)
        return df[["experiment"] + [c for c in df.columns if c != "experiment"]]

    def _figures(self):
        from ._plots import plot_multilayer, plot_theorem1

        yield plot_theorem1(self.theorem1), "Theorem 1: relative error against k/t"
        yield plot_multilayer(self.multilayer), "Theorems 3.1 and 3.2: top-layer error"


def run_theory(full: bool = False, seed: int = 0, exact_k: bool = False, device="cpu",
               echo=None) -> TheoryResult:
    """The theorem experiments at CI size (`full=False`, ~10 s) or full size (n up to 32768).

    Full: 414 s (266 s of CPU time) on a 2-core CPU shared with ~5 other jobs, float32 products
    (the same sweep took 624 s / 611 s CPU before the products were shared and the small steps
    put on one thread); `device` runs every product on that device (a GPU).
    Theorem 1 over n in {4096, 8192}, k in {64, 128}, k/t from 1/4 to 1/64, 3 seeds;
    Theorem 3.1 with widths 32768/8192/1024, k_2 = 128, k_1 from 256 to 4000 and
    k_1/k_0 = 1/4 (k_0 up to 16000 < k_2²); Theorem 3.1 again with widths 32768/16384/1024,
    k_0 = 16256 fixed (just under k_2² = 16384) and k_1 from 4096 to 16128: the only sizes here
    where the proof's bound `16 (k_2/k_1) ln n_2` falls below 1 (h~ = 0's error), which needs
    `k_1 > 16 k_2 ln n_2 = 14196`; Theorem 3.2 with widths 32768/8192/2048/1024, k_3 = 128,
    k_2 from 160 to 1000, k_2/k_1 = k_1/k_0 = 1/4; 3 seeds, 64 codes each. Theorem 3.2's bound
    `16 (k_3/k_2) ln n_3` cannot fall below 1 at any size that fits: with `sqrt(k_3) k_2 < k_0 <
    k_3²` it needs `k_3 > (16 ln n_3)²` (12,000 at n_3 = 1024).
    Quick: the `multilayer` defaults (k_top = 64, widths up to 4096), one seed; k_1 is at most
    0.16 × 16 k_2 ln n_2 (k_2 at most 0.07 × 16 k_3 ln n_3), so the bound
    is >= 1 everywhere and only the trend is measured.
    `echo`: as in `multilayer` (one line per run).
    """
    kw = dict(exact_k=exact_k, seed=seed, device=device)
    if full:
        t1 = theorem1(ns=(4096, 8192), ks=(64, 128), ratios=(1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64), seeds=3,
                      codes=64, **kw)
        ml = [multilayer(2, widths=[32768, 8192, 1024], k_top=128, k_ratio=1 / 4,
                         middle=(256, 384, 512, 768, 1024, 1536, 2048, 3072, 4000), seeds=3, codes=64,
                         echo=echo, **kw),
              multilayer(2, widths=[32768, 16384, 1024], k_top=128, k_bottom=FULL_K0,
                         middle=(4096, 8192, 14336, 15360, 16128), seeds=3, codes=64, echo=echo, **kw),
              multilayer(3, widths=[32768, 8192, 2048, 1024], k_top=128, k_ratio=1 / 4,
                         middle=(160, 192, 256, 384, 512, 768, 1000), seeds=3, codes=64, echo=echo, **kw)]
    else:
        t1 = theorem1(ns=(2048,), ks=(32, 64), ratios=(1 / 8, 1 / 16, 1 / 32), seeds=2, codes=32, **kw)
        ml = [multilayer(2, middle=(128, 256, 512, 1000), seeds=1, codes=16, echo=echo, **kw),
              multilayer(3, middle=(96, 192, 448), seeds=1, codes=16, echo=echo, **kw)]
    return TheoryResult(t1, ml, full)


FULL_K0 = 16256  # the full mode's fixed k_0 for Theorem 3.1: just under k_2² = 16384 (k_2 = 128)
