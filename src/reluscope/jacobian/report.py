"""Report section "Stability of the inverse": Jacobian spectra of every layer (or node)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import NotApplicable, ReportContext, Section, section

QUICK_SAMPLES, FULL_SAMPLES = 2, 4
QUICK_MAX_DIM = 1024  # quick mode: only outputs whose Gram matrix is at most this size
# a graph with a large input (`_matfree.LARGE_INPUT` values, e.g. 3×224×224): each stage's output and
# the logits, matrix-free where the dense Jacobian does not fit; one sample (two in the full report)
LARGE_SAMPLES = {True: 1, False: 2}
LARGE_QUICK = dict(k=10, probes=4, steps=10, max_steps=40)  # quick: cheaper estimates, wider error bars


def _outputs_for(net, quick: bool) -> list[int] | list[str] | None:
    """Layers to analyse: all, or in quick mode those with small Jacobian spectra (on a
    graph: also two ReLU nodes with the nodes they read, for the effect of ReLU)."""
    from ._jacobians import outputs

    if not net.is_chain:
        return _nodes_for(net, quick)
    n = math.prod(net.input_shape)
    if not quick or n <= QUICK_MAX_DIM:
        return None
    small = sorted({o.layer for o in outputs(net) if min(o.size, n) <= QUICK_MAX_DIM})
    if not small:
        raise NotApplicable(f"quick mode: every layer has more than {QUICK_MAX_DIM} singular values "
                            f"(input dimension {n}); run the full report")
    return small


def _nodes_for(graph, quick: bool) -> list[str] | None:
    """Quick mode on a graph with a large input: the 2nd and 5th ReLU nodes (as the paper's
    figure; spread over the depth when there are fewer) with the nodes they read, and the
    nodes with at most `QUICK_MAX_DIM` singular values (the head, by reverse mode)."""
    n = math.prod(graph.input_shape)
    if not quick or n <= QUICK_MAX_DIM:
        return None
    relus = graph.relu_nodes()
    if len(relus) >= 5:
        picked = [relus[1], relus[4]]
    else:
        picked = [relus[i] for i in np.unique(np.linspace(0, len(relus) - 1, min(2, len(relus)))
                                              .round().astype(int))] if relus else []
    names = [k for node in picked for k in (graph.node(node.inputs[0]).name, node.name)]
    names += [node.name for node in graph.nodes[1:] if min(math.prod(node.out_shape), n) <= QUICK_MAX_DIM]
    if not names:
        raise NotApplicable(f"quick mode: every node has more than {QUICK_MAX_DIM} singular values "
                            f"(input dimension {n}) and there is no ReLU node; run the full report")
    return list(dict.fromkeys(names))


@section("jacobian", "Stability of the inverse", order=50)
def build(ctx: ReportContext) -> Section:
    """Singular values of each layer output's Jacobian at a few test samples."""
    from . import spectra
    from ._matfree import LARGE_INPUT, stage_nodes
    from ._plots import (
        decay_figure,
        decay_indices,
        effect_of_relu_figure,
        relu_before_after,
        relu_pairs,
        summary_header,
        summary_rows,
    )

    net = ctx.net
    graph = not net.is_chain
    large = graph and math.prod(net.input_shape) >= LARGE_INPUT
    layers = stage_nodes(net) if large else _outputs_for(net, ctx.quick)
    count = LARGE_SAMPLES[ctx.quick] if large else QUICK_SAMPLES if ctx.quick else FULL_SAMPLES
    g = torch.Generator().manual_seed(ctx.seed)
    idx = torch.randperm(len(ctx.data.test), generator=g)[:count].sort().values
    options = LARGE_QUICK if large and ctx.quick else {}
    spec = spectra(net, ctx.data.test.x[idx], layers=layers, **options)
    rows = summary_rows(spec)
    by_index = {s.output.index: s for s in spec}

    def where(i: int) -> str:
        return f"node {by_index[i].output.name}" if graph else f"layer {i}"

    conds = [(s.output.index, float(np.nanmedian(s.condition))) for s in spec]
    worst = max(conds, key=lambda c: -1 if math.isnan(c[1]) else c[1])
    last = spec.layers[-1]
    if graph:
        drops = [(a, int(np.median(by_index[b].rank)), int(np.median(by_index[a].rank)))
                 for b, a in relu_before_after(spec)
                 if np.median(by_index[a].rank) < np.median(by_index[b].rank)]
    else:
        drops = [(s.output.index, int(np.median(p.rank)), int(np.median(s.rank)))
                 for p, s in zip(spec.layers, spec.layers[1:])
                 if s.output.stage == "post" and p.output.layer == s.output.layer
                 and np.median(s.rank) < np.median(p.rank)]
    out_cond = float(np.nanmedian(last.condition))
    numbers = {"samples": spec.samples, "input dimension": math.prod(net.input_shape),
               "outputs analysed": len(spec),
               f"condition number of {where(last.output.index)} (output)": out_cond,
               f"largest condition number ({where(worst[0])})": worst[1],
               "ReLUs that lower the rank": len(drops), "seconds": round(spec.seconds, 1)}
    unit = "node" if graph else "layer"
    reading = (f"Near a test input the net is linear; its Jacobian's singular values say how stably "
               f"the input can be recovered from each {unit}. The median condition number of the "
               f"output {unit} is {numbers[list(numbers)[3]]:.3g}; the worst {unit} reaches {worst[1]:.3g}. ")
    if drops:
        relu = "ReLU " if graph else ""
        kept = ", ".join(f"{relu}{where(i)} keeps rank {b} of {a}" for i, a, b in drops[:4])
        reading += "ReLUs remove rows: " + kept + (" …" if len(drops) > 4 else "") + "."
    else:
        reading += "No ReLU lowers the rank here: each keeps more active units than input dimensions."
    body = [table_html(summary_header(spec), rows)]
    if (relu_pairs(spec) if graph else any(s.output.stage == "post" for s in spec)):
        what = ("before (the node it reads) and after a ReLU node" if graph
                else "before and after a ReLU")
        body.append(figure_html(effect_of_relu_figure(spec),
                                f"Effect of ReLU: spectra {what} at two depths (median over samples, "
                                "band: min–max); where the curve after a ReLU ends earlier or falls "
                                "lower, the ReLU removed directions and the inverse is less stable."))
    if decay_indices(spec) is None:
        body.append(figure_html(decay_figure(spec), "Decay over layers: every output's spectrum, shallow "
                                "(dark) to deep (light); a steeper fall or a shorter curve with depth "
                                "means a worse-conditioned inverse."))
    else:
        body.append(figure_html(decay_figure(spec), "Decay over depth: the spectra of the ReLU nodes and "
                                "of the output (at most 12, spread over the depth, dark = shallow); a "
                                "steeper fall with depth means a worse-conditioned inverse."))
    if large:
        body.append(paragraph(f"Large input ({math.prod(net.input_shape):,} values): the output of each "
                              "stage (the last ReLU node of each width) and the logits, at "
                              f"{spec.samples} sample(s); " + "; ".join(spec.notes) + "."))
    elif layers is not None:
        if graph:
            body.append(paragraph(f"Quick mode: two ReLU nodes with the nodes they read, and the nodes with "
                                  f"at most {QUICK_MAX_DIM} singular values; the full report analyses "
                                  "every node."))
        else:
            body.append(paragraph(f"Quick mode: only layers with at most {QUICK_MAX_DIM} singular values "
                                  "are shown; the full report analyses every layer."))
    estimated = [s for s in spec if s.estimated]
    bound = float(max((np.max(s.error_bound) for s in spec if not s.estimated), default=float("nan")))
    if len(estimated) < len(spec):
        body.append(paragraph(f"Method: forward-mode Jacobians in float64, singular values from the Gram "
                              f"matrix or SVD (auto, rtol {spec.rtol:g}): every nonzero value shown has a "
                              f"relative error of at most about {bound:.1e} (first-order bound)."))
    if estimated:
        names = ", ".join(str(s.output.index) for s in estimated[:12]) + (" …" if len(estimated) > 12 else "")
        body.append(paragraph(f"ESTIMATED (matrix-free, lanczos; {estimated[0].method_reason}): outputs "
                              f"{names}. For these only the top {estimated[0].singular_values.shape[1]} "
                              "singular values are computed (to the tolerance above); rank, smallest "
                              "nonzero value and condition number in the table are estimates or bounds, "
                              "the others exact."))
    return Section("Stability of the inverse", "".join(body), numbers, reading,
                   json={**spec.to_dict(), "sample_indices": idx.tolist()})
