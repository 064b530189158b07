"""Report section "Random-like weights": trained vs initial, per layer."""

from __future__ import annotations

import math

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import Claim, ReportContext, Section, section

_COLUMNS = [("layer", "layer"), ("shape", "matrix"), ("verdict", "verdict"), ("outliers", "outliers"),
            ("alpha", "tail α"), ("ks_bulk", "bulk KS to MP"), ("ks_noise", "KS noise level"),
            ("kurtosis", "excess kurtosis"), ("entries_ks", "entries KS"), ("entries_ks_crit", "KS 1% crit."),
            ("init_verdict", "verdict at init"), ("init_outliers", "outliers at init"),
            ("init_alpha", "tail α at init"), ("init_kurtosis", "kurtosis at init")]


def _pick(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _claims(res) -> list[Claim]:
    judged = [ls for ls in res.layers if ls.verdict.label != "too small"]
    gauss = sum(ls.verdict.entries_gaussian for ls in res.layers)
    kurt = sorted(abs(ls.weight.excess_kurtosis) for ls in res.layers)
    claims = [
        Claim("Arora et al.: entries of trained weight matrices look Gaussian (panel a)",
              f"{gauss}/{len(res.layers)} layers pass KS and Anderson–Darling at 1%; median |excess "
              f"kurtosis| {kurt[len(kurt) // 2]:.2f}", gauss == len(res.layers)),
    ]
    if judged:
        rl = sum(ls.verdict.label == "random-like" for ls in judged)
        spikes = sum(ls.mp.n_outliers for ls in judged)
        claims.append(Claim(
            "Arora et al.: singular values of trained W match a Gaussian matrix of the same shape (panel c)",
            f"{rl}/{len(judged)} layers random-like; {spikes} eigenvalues above the MP edges in total; "
            + ", ".join(f"{lab}: {sum(ls.verdict.label == lab for ls in judged)}"
                        for lab in ("spiked", "heavy-tailed", "non-MP bulk")),
            rl == len(judged)))
        if res.init is not None:
            init_judged = [ls for ls in res.init if ls.verdict.label != "too small"]
            irl = sum(ls.verdict.label == "random-like" for ls in init_judged)
            claims.append(Claim("Sanity check: at initialisation every layer reads random-like",
                                f"{irl}/{len(init_judged)} layers random-like at initialisation",
                                irl == len(init_judged)))
    return claims


@section("spectrum", "Random-like weights", order=20)
def build(ctx: ReportContext) -> Section:
    """Entry statistics and spectra of every weight matrix, trained and at initialisation."""
    from ._analyze import analyze
    from ._plots import layer_figure, summary_figure

    init = ctx.init_model if ctx.init_model is not None else True
    res = analyze(ctx.net, init_model=init, seed=ctx.seed)
    rows = res.table()
    cols = [(k, h) for k, h in _COLUMNS if k in rows[0]]
    parts = [
        paragraph("Arora et al. assume trained weights are 'random-like': i.i.d.-looking entries "
                  "and singular values like those of a Gaussian matrix. Each weight matrix (conv "
                  "kernels reshaped to c_out × c_in·k·k) is compared with the Marchenko–Pastur law "
                  "for its shape and a robustly fitted variance. Outliers are eigenvalues above the "
                  "MP edge plus a Tracy–Widom margin (false-alarm rate "
                  f"{res.settings['false_alarm']:g} per matrix for pure noise); a heavy tail is a "
                  "continuum of such eigenvalues with a power-law exponent α significantly below 4; "
                  "the bulk fits MP when its KS distance is at the level of a Gaussian matrix."),
        table_html([h for _, h in cols], [[r[k] for k, _ in cols] for r in rows]),
        figure_html(summary_figure(res), "Outliers above the MP edge and tail exponent per layer: "
                                         "trained (blue) vs initial (grey)."),
    ]
    shown = _pick(len(res.layers), 2 if ctx.quick else 12)
    for i in shown:
        ls = res.layers[i]
        ini = res.init[i] if res.init is not None else None
        parts.append(figure_html(layer_figure(ls, ini),
                                 f"Layer {ls.name}: " + "; ".join(ls.verdict.reasons[:2]) + "."))
    if len(shown) < len(res.layers):
        parts.append(paragraph(f"Figures for {len(shown)} of {len(res.layers)} layers (quick "
                               "configuration); the JSON holds every layer."))
    convs = [(ls.name, ls.conv) for ls in res.layers if ls.conv is not None]
    if convs:
        parts.append(table_html(["conv layer", "input", "method", "exact", "operator norm"],
                                [(n, f"{c.input_size[0]}×{c.input_size[1]}", c.method, c.exact, c.norm)
                                 for n, c in convs]))
        parts.append(paragraph("Conv operator singular values: exact by the FFT block method of Sedghi "
                               "et al. for circular padding, exact by a dense SVD when the operator is "
                               "small, otherwise the circular-padding values as an approximation of "
                               "zero padding (differences come from the border only)."))
    if res.skipped:
        parts.append(paragraph("Skipped: " + "; ".join(f"{n} ({r})" for n, r in res.skipped) + "."))
    labels = [ls.verdict.label for ls in res.layers]
    counts = {lab: labels.count(lab) for lab in dict.fromkeys(labels)}
    numbers = {"layers analysed": len(res.layers),
               "verdicts (trained)": ", ".join(f"{k}: {v}" for k, v in counts.items()),
               "outliers (trained)": sum(ls.mp.n_outliers for ls in res.layers)}
    if res.init is not None:
        numbers["outliers (initial)"] = sum(ls.mp.n_outliers for ls in res.init)
        numbers["initial model"] = ("given" if ctx.init_model is not None
                                    else f"re-initialised, seed {ctx.seed}")
    alphas = [ls.tail.alpha for ls in res.layers if not math.isnan(ls.tail.alpha)]
    if alphas:
        numbers["median tail α (trained)"] = sorted(alphas)[len(alphas) // 2]
    reading = (f"{counts.get('random-like', 0)} of {len(res.layers)} layers read random-like after "
               f"training. " + "; ".join(f"layer {ls.name}: {ls.verdict.label}" for ls in res.layers) + ".")
    return Section("Random-like weights", "".join(parts), numbers, reading, json=res, claims=_claims(res))
