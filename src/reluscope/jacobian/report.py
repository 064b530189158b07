"""Report section "Stability of the inverse": Jacobian spectra of every layer."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import NotApplicable, ReportContext, Section, section

QUICK_SAMPLES, FULL_SAMPLES = 2, 4
QUICK_MAX_DIM = 1024  # quick mode: only outputs whose Gram matrix is at most this size


def _outputs_for(net, quick: bool) -> list[int] | None:
    """Layers to analyse: all, or in quick mode those with small Jacobian spectra."""
    from ._jacobians import outputs

    n = math.prod(net.input_shape)
    if not quick or n <= QUICK_MAX_DIM:
        return None
    small = sorted({o.layer for o in outputs(net) if min(o.size, n) <= QUICK_MAX_DIM})
    if not small:
        raise NotApplicable(f"quick mode: every layer has more than {QUICK_MAX_DIM} singular values "
                            f"(input dimension {n}); run the full report")
    return small


@section("jacobian", "Stability of the inverse", order=50)
def build(ctx: ReportContext) -> Section:
    """Singular values of each layer output's Jacobian at a few test samples."""
    from . import spectra
    from ._plots import SUMMARY_HEADER, decay_figure, effect_of_relu_figure, summary_rows

    net = ctx.net
    layers = _outputs_for(net, ctx.quick)
    count = QUICK_SAMPLES if ctx.quick else FULL_SAMPLES
    g = torch.Generator().manual_seed(ctx.seed)
    idx = torch.randperm(len(ctx.data.test), generator=g)[:count].sort().values
    spec = spectra(net, ctx.data.test.x[idx], layers=layers)
    rows = summary_rows(spec)
    conds = [(s.output.index, float(np.nanmedian(s.condition))) for s in spec]
    worst = max(conds, key=lambda c: -1 if math.isnan(c[1]) else c[1])
    last = spec.layers[-1]
    drops = [(s.output.index, int(np.median(p.rank)), int(np.median(s.rank)))
             for p, s in zip(spec.layers, spec.layers[1:])
             if s.output.stage == "post" and p.output.layer == s.output.layer
             and np.median(s.rank) < np.median(p.rank)]
    numbers = {"samples": spec.samples, "input dimension": math.prod(net.input_shape),
               "outputs analysed": len(spec),
               f"condition number of layer {last.output.index} (output)": float(np.nanmedian(last.condition)),
               f"largest condition number (layer {worst[0]})": worst[1],
               "ReLUs that lower the rank": len(drops), "seconds": round(spec.seconds, 1)}
    reading = (f"Near a test input the net is linear; its Jacobian's singular values say how stably "
               f"the input can be recovered from each layer. The median condition number of the "
               f"output layer is {numbers[list(numbers)[3]]:.3g}; the worst layer reaches {worst[1]:.3g}. ")
    if drops:
        kept = ", ".join(f"layer {i} keeps rank {b} of {a}" for i, a, b in drops[:4])
        reading += "ReLUs remove rows: " + kept + (" …" if len(drops) > 4 else "") + "."
    else:
        reading += "No ReLU lowers the rank here: each keeps more active units than input dimensions."
    body = [table_html(SUMMARY_HEADER, rows)]
    if any(s.output.stage == "post" for s in spec):
        body.append(figure_html(effect_of_relu_figure(spec),
                                "Effect of ReLU: spectra before and after a ReLU at two depths "
                                "(median over samples, band: min–max)"))
    body.append(figure_html(decay_figure(spec), "Decay over layers: every output's spectrum"))
    if layers is not None:
        body.append(paragraph(f"Quick mode: only layers with at most {QUICK_MAX_DIM} singular values "
                              "are shown; the full report analyses every layer."))
    bound = float(max(np.max(s.error_bound) for s in spec))
    body.append(paragraph(f"Method: forward-mode Jacobians in float64, singular values from the Gram "
                          f"matrix or SVD (auto, rtol {spec.rtol:g}): every nonzero value shown has a "
                          f"relative error of at most about {bound:.1e} (first-order bound)."))
    return Section("Stability of the inverse", "".join(body), numbers, reading,
                   json={**spec.to_dict(), "sample_indices": idx.tolist()})
