"""Report section "Shadow generative model": theorems on Gaussian layers, reconstructions."""

from __future__ import annotations

import math

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import Claim, NotApplicable, ReportContext, Section, section


def _pick_layers(relus: list[int], most: int = 4) -> list[int]:
    if len(relus) <= most:
        return relus
    step = (len(relus) - 1) / (most - 1)
    return sorted({relus[round(i * step)] for i in range(most)})


def _theory_claims(res) -> list[Claim]:
    t1 = res.theorem1
    slope = t1.slopes["best"]
    claims = [
        Claim("Theorem 1: the error of one reversed Gaussian layer is Õ(k/t) (log-log slope ≈ 1)",
              f"slope {slope:.2f} (best threshold), {len(t1.runs)} runs", 0.5 <= slope <= 1.5),
        Claim("Theorem 1: an offset (threshold) is needed; a scalar one suffices",
              "best-threshold error below no-offset error in "
              f"{sum(r['errors']['best'] < r['errors']['none'] for r in t1.runs)}/{len(t1.runs)} runs",
              all(r["errors"]["best"] < r["errors"]["none"] for r in t1.runs)),
    ]
    for m in res.multilayer:
        best = [r["eps"]["best"] for r in m.runs]
        zero = [r["eps_zero"] for r in m.runs]
        recovered = min(b / z for b, z in zip(best, zero))
        s = m.slopes["best"]
        holds = None if recovered > 0.9 else (0.5 <= s <= 1.5)
        claims.append(Claim(
            f"Theorem 3.{m.depth - 1}: {m.depth} layers, E|h̃ᵢ − hᵢ|²/τ² = Õ(k_top/k_below)",
            f"slope {s:.2f}; best ε is {recovered:.2f}× that of h̃ = 0 at the smallest ratio", holds))
    return claims


def _theory_table(res) -> str:
    rows = []
    t1 = res.theorem1
    for rule in t1.slopes:
        rows.append(("Theorem 1", rule, t1.slopes[rule], math.exp(t1.intercepts[rule])
                     if not math.isnan(t1.intercepts[rule]) else float("nan"), t1.within_bound[rule]))
    for m in res.multilayer:
        for rule in m.slopes:
            rows.append((f"Theorem 3.{m.depth - 1}", rule, m.slopes[rule], float("nan"), float("nan")))
    return table_html(["experiment", "offset rule", "log-log slope", "constant C in C(k/t)^s",
                       "fraction within 16(k/t)ln m"], rows)


_GRAPH_NOTE = (
    "This model is a graph, not a chain (it has residual adds, concatenations or fan-outs): the "
    "shadow model is run backwards through the graph's transpose, but Arora, Liang and Ma's "
    "theorems are proved for chains of ReLU layers only, so they do not apply here and the "
    "reconstruction numbers are measurements, not predictions of the theory.")


def _code_sites(net) -> list:
    """Where codes are read: ReLU layer indices on a chain, ReLU node names on a graph (those
    with only ReLU activations below them, which the shadow model can reverse)."""
    if net.is_chain:
        return net.relu_layers()
    from ._graph_shadow import reversible

    return [n.name for n in net.relu_nodes() if reversible(net, n)]


@section("shadow", "Shadow generative model", order=30)
def build(ctx: ReportContext) -> Section:
    """Theorems 1/3.1/3.2 on Gaussian layers (CI size when quick) and reconstructions of
    test images from the model's hidden layers, trained vs random weights. On a graph (a
    ResNet) the reconstructions run through its transpose from ReLU nodes, labelled by node
    name, and are reported as measurements: the theorems are proved for chains only."""
    from ._plots import plot_multilayer, plot_reconstruction, plot_reconstruction_errors, plot_theorem1
    from ._reconstruct import reconstruct
    from ._theory import run_theory

    res = run_theory(full=not ctx.quick, seed=ctx.seed)
    body = [paragraph(
        "Arora, Liang and Ma's shadow model runs a ReLU net backwards, x̃ = r(αWh) ⊙ dropout, and "
        "claims the forward pass recovers h. On Gaussian layers (W ~ N(0,1), α = 2/t, t = ρn) the "
        "relative error ‖h̃ − h‖²/‖h‖² is measured under three offsets: none, the theorem's "
        "b = −δ‖h‖ with δ = 2√(ln m / t), and the best scalar threshold (exact 1-D search)."
        + (" Quick mode: CI-size sweep (n = 2048)." if ctx.quick else " Full-size sweep (n up to 4096)."))]
    body.append(figure_html(plot_theorem1(res.theorem1), "Theorem 1: relative error against k/t on log–log "
                            "axes, one colour per offset rule; the theorem holds where a rule's line runs "
                            "parallel to the dotted slope-1 line."))
    body.append(figure_html(plot_multilayer(res.multilayer), "Theorems 3.1 and 3.2: top-layer error ε "
                            "against the sparsity ratio; recovery works only where a rule's line lies "
                            "well below the dashed h̃ = 0 line."))
    body.append(_theory_table(res))
    numbers = {"Theorem 1 slope (best threshold)": res.theorem1.slopes["best"],
               "Theorem 1 slope (theorem's offset)": res.theorem1.slopes["theory"]}
    json = {"theory": res.to_dict()}
    reading = (f"With the best threshold the error falls with k/t at slope {res.theorem1.slopes['best']:.2f} "
               "(theory: 1 up to logs). The theorem's offset δ‖h‖ is as large as a typical nonzero "
               "h_i unless t ≫ 16 k ln m, so at feasible sizes it zeroes most of h; the log factors "
               "matter. Multilayer recovery is weak at these widths (compare with h̃ = 0).")

    chain = ctx.net is None or ctx.net.is_chain
    relus = _code_sites(ctx.net) if ctx.net is not None else []
    claims = _theory_claims(res)
    try:
        if not relus or ctx.data is None:
            raise NotApplicable("the model has no ReLU layer the shadow model can reverse, or no data")
        x = ctx.data.test.x[: 8 if ctx.quick else 32]
        x = x[x.flatten(1).abs().sum(1) > 0]
        rec = reconstruct(ctx.net, x, layers=_pick_layers(relus), rho=0.5, generator=ctx.seed)
    except NotApplicable as exc:
        body.append(paragraph(f"Reconstruction not applicable: {exc}"))
    else:
        if not chain:
            body.append(paragraph(_GRAPH_NOTE + " Layers are named by their ReLU node."))
        body.append(figure_html(plot_reconstruction(rec), "Test images reconstructed from hidden layers: "
                                "trained vs random weights of the same shapes and scale (dropout-averaged); "
                                "a reversible net's trained columns resemble the originals more."))
        body.append(figure_html(plot_reconstruction_errors(rec), "Relative reconstruction error per layer, "
                                "trained (blue) vs random (grey) weights: trained below random means "
                                "training made the net more reversible."))
        rows = []
        for lay in rec.layers:
            t, r = lay.errors["trained"], lay.errors["random"]
            label = f"{lay.layer} ({lay.name})" if chain else lay.name
            rows.append((label, lay.units, t["mean"]["input"], r["mean"]["input"],
                         t["mean"]["input_scaled"], r["mean"]["input_scaled"], t["mean"]["hidden"],
                         r["mean"]["hidden"], t["sample"]["input"], r["sample"]["input"]))
        body.append(table_html(
            ["layer" if chain else "ReLU node", "units", "input (trained)", "input (random)",
             "input, best scale (trained)", "input, best scale (random)", "hidden (trained)",
             "hidden (random)", "input, one ρ=0.5 sample (trained)", "same (random)"], rows))
        better = sum(lay.errors["trained"]["mean"]["input_scaled"]
                     <= lay.errors["random"]["mean"]["input_scaled"] for lay in rec.layers)
        claims.append(Claim("Trained weights reconstruct images at least as well as random ones",
                            f"trained ≤ random (input space, best scale) at {better}/{len(rec.layers)} "
                            "layers",
                            better * 2 > len(rec.layers)))
        numbers["layers reconstructed"] = len(rec.layers)
        json["reconstruction"] = rec.to_dict()
        reading += (f" On {ctx.data.spec.name}, trained weights reconstruct no worse than random ones at "
                    f"{better} of {len(rec.layers)} layers (Gilbert et al. report relative errors "
                    "0.33–0.69 learned vs 0.35–0.44 random for CNN layers 1–4).")
        if not chain:
            reading += " " + _GRAPH_NOTE
    return Section("Shadow generative model", "".join(body), numbers, reading, json=json, claims=claims)


def quick_train_config(seed: int = 0):
    """The report's quick SHADOW configuration on digits (paired over 3 seeds, so decidable)."""
    from ._experiment import ShadowTrainConfig

    return ShadowTrainConfig(data="digits", budgets=(100, None), seeds=3, steps=100, lrs=(0.05,), seed=seed,
                             max_test=None)


@section("shadow-train", "SHADOW training", order=31)
def build_training(ctx: ReportContext) -> Section:
    """Baseline / dropout / SHADOW / dropout+SHADOW on digits (its own models, not ctx.model)."""
    from ._experiment import shadow_experiment
    from .experiment_report import experiment_config, summarise, training_section

    quick = ctx.quick
    cfg = quick_train_config(ctx.seed) if quick else experiment_config("digits", "digits", False, ctx.seed)
    rep, claims = summarise({"digits": shadow_experiment(cfg)}, quick)
    return training_section(rep, claims)
