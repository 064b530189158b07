"""Report section "Pre-images of ReLU layers" and the page of `reluscope reproduce behrmann`."""

from __future__ import annotations

import math

import torch

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import NotApplicable, ReportContext, Section, section
from ._classify import KINDS
from ._net import classify_layer
from ._reproduce import PreimageReproduction, reproduce

QUICK_SAMPLES, FULL_SAMPLES = 50, 1000
# Seconds of classification the section may spend per weight set (trained, initial). One
# sample costs about an m x n^2 factorisation of the active rows; at ~1e10 flop/s a
# 256 x 64 layer takes microseconds, a CIFAR conv layer (32768 x 3072) about 15 s.
QUICK_BUDGET_S, FULL_BUDGET_S, FLOPS = 20.0, 600.0, 1e10


def sample_count(m: int, n: int, quick: bool) -> int:
    """Samples to classify for an m x n layer: the default count, capped by the time budget.

    >>> sample_count(256, 64, quick=True), sample_count(32768, 3072, quick=True)
    (50, 2)
    """
    wanted, budget = (QUICK_SAMPLES, QUICK_BUDGET_S) if quick else (FULL_SAMPLES, FULL_BUDGET_S)
    per_sample = m * n * n / FLOPS
    return int(max(2, min(wanted, budget // per_sample)))


def _samples(ctx: ReportContext, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(ctx.seed)
    x = ctx.data.test.x
    return x[torch.randperm(len(x), generator=g)[:n].sort().values]


def _first_relu(net) -> tuple[int | str, int, int]:
    """The first ReLU layer (chain) or node (graph) and its system's size m x n."""
    if net.is_chain:
        relu = net.relu_layers()
        if not relu:
            raise NotApplicable("the model has no layer with a plain ReLU activation")
        lay = net.layers[relu[0]]
        return relu[0], math.prod(lay.out_shape), math.prod(lay.in_shape)
    from ._graph import affine_region

    relu = net.relu_nodes()
    if not relu:
        raise NotApplicable("the model has no plain ReLU node")
    region = affine_region(net, relu[0])
    return relu[0].name, math.prod(relu[0].out_shape), region.n


@section("preimage", "Pre-images of ReLU layers", order=40)
def preimage_section(ctx: ReportContext) -> Section:
    index, m, n = _first_relu(ctx.net)
    count = sample_count(m, n, ctx.quick)
    x = _samples(ctx, count)
    workers = 1 if ctx.quick else None  # a handful of small problems: process start-up would dominate
    trained = classify_layer(ctx.net, index, x, workers=workers)
    panels = [("trained", trained.batch)]
    init = None
    if ctx.init_model is not None:
        from .. import nets

        init_net = nets.load(ctx.init_model, input_shape=ctx.net.input_shape)
        init = classify_layer(init_net, index, x, workers=workers)
        panels.append(("at initialisation", init.batch))
    from ._plots import positives_histogram

    fig = positives_histogram(panels, trained.n)
    counts = trained.batch.counts()
    pos = trained.batch.n_positive
    target = trained.layer if trained.sources else f"{index} ('{trained.layer}')"
    numbers = {"node" if trained.sources else "layer": f"{target}, {trained.m} x {trained.n}",
               "samples (test)": len(x), "mean positive outputs": float(pos.mean()),
               "min / max positive outputs": f"{pos.min()} / {pos.max()}",
               **{f"{k} pre-images": v for k, v in counts.items()},
               "median time per sample (s)": trained.batch.median_seconds()}
    rows = [("trained", *[trained.batch.counts()[k] for k in KINDS], float(pos.mean()))]
    if init is not None:
        rows.append(("at initialisation", *[init.batch.counts()[k] for k in KINDS],
                     float(init.batch.n_positive.mean())))
    body = table_html(["weights", *KINDS, "mean positives"], rows)
    body += figure_html(fig, f"Positive outputs of {trained.label} per test sample, coloured by pre-image "
                             f"kind; right of the dashed line (n = {trained.n} inputs) the active rows alone "
                             "can pin the input down, left of it look for compact (green) or unbounded "
                             "(orange) pre-images.")
    if count < (QUICK_SAMPLES if ctx.quick else FULL_SAMPLES):
        body += paragraph(f"{count} samples only: each costs about an {m} × {n}² factorisation, so the "
                          "count is capped to keep the section within its time budget (more with --full, "
                          "or all you want with `reluscope preimage`).")
    body += paragraph(f"The pre-image lives in {trained.space}. Tolerances: "
                      + ", ".join(f"{k} {v:g}" for k, v in trained.tolerances.to_dict().items()) + ".")
    return Section("Pre-images of ReLU layers", body, numbers, _reading(counts, trained.n, pos),
                   json={"trained": trained.to_dict(), "init": None if init is None else init.to_dict()})


def _reading(counts: dict, n: int, pos) -> str:
    total = sum(counts.values())
    text = (f"Of {total} test samples, {counts['singleton']} have a single-point pre-image (the layer's "
            f"output determines its input), {counts['compact']} a bounded polytope and "
            f"{counts['unbounded']} an unbounded set (information lost along a direction).")
    if counts["degenerate"]:
        text += (f" {counts['degenerate']} are degenerate: the deciding quantity is closer to zero than "
                 "float64 data can certify (their condition numbers are in the JSON).")
    if pos.min() > n and counts["singleton"] == total:
        text += (f" Every sample has more positive outputs than the {n} inputs, so the active rows alone "
                 "pin the input down: this layer is injective on the data.")
    return text


def reproduction_section(rep, quick: bool) -> Section:
    """The page of `reproduce behrmann --part preimage` from a `PreimageReproduction`."""
    from ._plots import positives_histogram

    panels = [(f"{p.name} ({p.test_acc:.1%} test acc.)", p.batch) for p in rep.protocols]
    panels += [(r.name, r.batch) for r in rep.random]
    fig = positives_histogram(panels, rep.n_input)
    rows = [(p.name, p.description, *[p.batch.counts()[k] for k in KINDS], float(p.batch.n_positive.mean()),
             int(p.batch.n_positive.min()), int(p.batch.n_positive.max()))
            for p in [*rep.protocols, *rep.random]]
    body = table_html(["layer", "how", *KINDS, "mean positives", "min", "max"], rows)
    body += figure_html(fig, f"Histogram of positive outputs of the {rep.hidden}-unit layer per test sample, "
                             "coloured by pre-image kind (the slide's figure), for each training protocol "
                             f"and for random layers; left of the dashed line (n = {rep.n_input}) fewer "
                             "units are active than there are inputs, so no pre-image there is a single "
                             "point: look for how they split into compact (green) and unbounded (orange).")
    for note in rep.notes:
        body += paragraph(note)
    numbers = {"test samples per layer": len(rep.protocols[0].batch.results),
               "configuration": "quick (reduced)" if quick else "full"}
    return Section(f"Pre-images of a {rep.n_input}→{rep.hidden} ReLU layer", body, numbers, rep.reading(),
                   json=rep.to_dict(), claims=rep.claims(quick))


__all__ = ["PreimageReproduction", "preimage_section", "reproduce", "reproduce_part", "reproduction_section"]


def reproduce_part(cfg) -> Section:
    """`reluscope reproduce behrmann --part preimage`: run `reproduce` with a `ReproConfig`
    (its MNIST source, quick flag and seed) and render the page section."""
    return reproduction_section(reproduce(cfg.mnist, quick=cfg.quick, seed=cfg.seed), cfg.quick)
