"""Where the time of the Theorem 3.1/3.2 sweep goes, per stage, before and after (same run).

    nice .venv/bin/python bench/bench_shadow_theory.py [--widths 32768,8192,2048,1024] [--codes 64]
    nice .venv/bin/python bench/bench_shadow_theory.py --full   # the whole full mode, timed by part

Stages of one seed and one run (k_top = 128, k_below/k_top = 8, every ratio below 1/4):
- build: the Gaussian net; "before" = `torch.randn` of each layer, an `nn.Linear` initialised
  by default, a copy, and `nets.load` (finite and equivalence checks); "after" = chunked draws
  straight into uninitialised layers (`gaussian_net`), and for later seeds a redraw in place
  (`refill_gaussian`, no new net and no checks);
- sample: `sample_chain` down the net (one float32 product per layer);
- recover: the forward pass under the three offset rules; "before" = one pass per rule, every
  step on every thread; "after" = the bottom product shared by the rules, the steps other than
  the products on one thread (`_recover`);
- measures: errors on/off the support, per coordinate, support recovery; "after" on one thread
  (on a busy machine OpenMP's barriers make these small steps many times slower on two);
- threshold: the exact best-threshold search on the bottom layer (part of recover).
Wall and CPU seconds are printed (the machine may be shared: CPU time is the steadier one).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn

from reluscope import nets
from reluscope.shadow import _theory as th
from reluscope.shadow import _theory_measures as tm
from reluscope.shadow._reversibility import best_threshold
from reluscope.shadow._sampler import sample_chain


class _Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _old_net(widths, gen):
    """The net as it was built before: randn, default init, copy, load."""
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        lin = nn.Linear(a, b, bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen))
        mods += [lin, nn.ReLU()]
    return nets.load(nn.Sequential(*mods), input_shape=(widths[0],))


def _old_recover(net, levels, rule, rhos):
    """The forward pass as it was before: one pass per rule, every step on every thread."""
    depth = len(net.layers)
    cur = levels[-1]
    for j in range(depth):
        lay = net.layers[j]
        target = levels[depth - 1 - j].double()
        z = lay.affine(cur.to(lay.weight.dtype), bias=False).double()
        c = target.norm(dim=1, keepdim=True).clamp(min=1e-30)
        if rule == "none":
            off = 0.0
        elif rule == "theory":
            off = 2.0 * math.sqrt(math.log(lay.out_shape[0]) / (rhos[j] * lay.in_shape[0])) * c
        else:
            off = best_threshold(z / c, target / c)[0] * c
        cur = torch.relu(z - off)
    return cur, z


def _measures(hd, ht):
    tm.errors_on_off_support(hd, ht), tm.coordinate_errors(hd, ht), tm.support_recovery(hd, ht)


def _row(name, before, after):
    print(f"{name:<34} before {before.wall:7.2f} s wall {before.cpu:7.2f} s cpu   "
          f"after {after.wall:7.2f} s wall {after.cpu:7.2f} s cpu")


@torch.no_grad()
def stages(widths: list[int], codes: int) -> None:
    depth = len(widths) - 1
    k_top = 128
    ks = [k_top * 8 * 4 ** j for j in range(depth - 1, -1, -1)] + [k_top]  # bottom first
    rhos = [k / n for k, n in zip(ks, widths)]
    with _Clock() as b_build:
        net = _old_net(widths, torch.Generator().manual_seed(0))
    del net
    with _Clock() as a_build:
        net = th.gaussian_net(widths, torch.Generator().manual_seed(0))
    with _Clock() as a_refill:
        th.refill_gaussian(net, torch.Generator().manual_seed(0))
    _row(f"build net {'/'.join(map(str, widths))}", b_build, a_build)
    _row("  (after: redraw in place, seed 2+)", b_build, a_refill)
    h = th.sparse_codes(codes, widths[-1], k_top, torch.Generator().manual_seed(1))
    with _Clock() as sample:
        levels = sample_chain(net, h, layer=depth - 1, rho=rhos[:-1][::-1], alpha="paper",
                              generator=torch.Generator().manual_seed(2))
    _row(f"sample (k {'/'.join(map(str, ks[::-1]))})", sample, sample)
    with _Clock() as b_rec:
        for rule in th.THEOREM_RULES:
            _old_recover(net, levels, rule, rhos)
    with _Clock() as a_rec:
        out = th._recover(net, levels, rhos)
    _row("recover, 3 rules", b_rec, a_rec)
    hd, ht = h.double(), out["best"][0]
    with _Clock() as b_meas:
        for _ in th.THEOREM_RULES:
            _measures(hd, ht)
    with _Clock() as a_meas, th.one_thread():
        for _ in th.THEOREM_RULES:
            _measures(hd, ht)
    _row("measures, 3 rules (after: 1 thread)", b_meas, a_meas)
    first = net.layers[0]
    z = first.affine(levels[-1], bias=False).double()
    target = levels[-2].double()
    c = target.norm(dim=1, keepdim=True)
    with _Clock() as b_thr:
        best_threshold(z / c, target / c)
    with _Clock() as a_thr, th.one_thread():
        best_threshold(z / c, target / c)
    _row(f"  of which threshold search ({z.numel()} values)", b_thr, a_thr)
    with _Clock() as prod:
        first.affine(levels[-1], bias=False)
    _row("  of which one bottom product", prod, prod)


def full() -> None:
    lines = []
    with _Clock() as clock:
        res = th.run_theory(full=True, echo=lines.append)
    print(f"full theory: {clock.wall:.0f} s wall, {clock.cpu:.0f} s cpu, "
          f"{len(res.theorem1.runs)} + {' + '.join(str(len(m.runs)) for m in res.multilayer)} runs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="32768,8192,2048,1024")
    ap.add_argument("--codes", type=int, default=64)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.full:
        full()
    else:
        stages([int(w) for w in args.widths.split(",")], args.codes)


if __name__ == "__main__":
    main()
