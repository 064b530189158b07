"""The report's first sections: the model and its training."""

from __future__ import annotations

from ..report._html import figure_html, table_html
from ._registry import NotApplicable, ReportContext, Section, section


@section("model", "Model", order=0)
def model_section(ctx: ReportContext) -> Section:
    net = ctx.net
    numbers = {"parameters": net.num_parameters(), "input shape": "×".join(map(str, net.input_shape)),
               "data": f"{ctx.data.spec.name}: {len(ctx.data.train)} train / {len(ctx.data.test)} test"}
    if net.is_chain:
        rows = [(r["name"], r["type"], "×".join(map(str, r["in_shape"])),
                 "×".join(map(str, r["out_shape"])), r["parameters"], r["activation"])
                for r in net.summary()]
        body = table_html(["layer", "type", "input", "output", "parameters", "activation"], rows)
        numbers = {"layers": len(net), **numbers}
        reading = ("Each row is one affine map (batch norm folded in) followed by its activation, "
                   "as every analysis below sees the model.")
        table = {"layers": net.summary()}
    else:
        rows = [(r["name"], r["op"], r["type"], ", ".join(r["inputs"]), "×".join(map(str, r["out_shape"])),
                 r["parameters"], r["activation"]) for r in net.table()]
        body = table_html(["node", "op", "type", "inputs", "output", "parameters", "activation"], rows)
        numbers = {"nodes": len(net.nodes) - 1, **numbers}
        reading = ("The model is a graph, not a chain: each row is one node (affine maps with batch "
                   "norm folded in, activations, and joins such as residual adds), named by module "
                   "path. Analyses that read chains only say so in their section.")
        table = {"nodes": net.table()}
    if ctx.data.notes:
        reading += " Data: " + "; ".join(ctx.data.notes) + "."
    return Section("Model", body, numbers, reading, json={**table, "data": ctx.data.to_dict()})


@section("training", "Training", order=10)
def training_section(ctx: ReportContext) -> Section:
    if ctx.training is None or not ctx.training.history:
        raise NotApplicable("the model was loaded from a file without a training history")
    hist = ctx.training.history
    fig = training_figure(hist)
    final = hist[-1]
    numbers = {"epochs": len(hist), "final train error": 1 - final["train_acc"],
               "final test error": 1 - final["test_acc"],
               "optimizer": f"{ctx.training.config.optimizer}, lr {ctx.training.config.lr}"}
    gap = final["train_acc"] - final["test_acc"]
    reading = (f"The model reaches {100 * final['test_acc']:.1f}% test accuracy after "
               f"{len(hist)} epochs; the train–test gap is {100 * gap:.1f} points.")
    caption = ("Loss and error rate per epoch, train (blue) vs test (red): both should fall; a gap that "
               "keeps widening means over-fitting.")
    return Section("Training", figure_html(fig, caption), numbers, reading, json=ctx.training.to_dict())


def training_figure(hist: list[dict]):
    """Loss (log scale) and error rate per epoch, train vs test, from a training history."""
    from .._style import TEST, TRAIN, log_ticks, subplots

    epochs = [h["epoch"] for h in hist]
    fig, ((a, b),) = subplots(1, 2, panel_height=3.0)
    a.plot(epochs, [h["train_loss"] for h in hist], color=TRAIN, label="train")
    a.plot(epochs, [h["test_loss"] for h in hist], color=TEST, label="test")
    a.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    b.plot(epochs, [1 - h["train_acc"] for h in hist], color=TRAIN, label="train")
    b.plot(epochs, [1 - h["test_acc"] for h in hist], color=TEST, label="test")
    b.set(xlabel="epoch", ylabel="error", title="error rate")
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
        log_ticks(ax)
    return fig
