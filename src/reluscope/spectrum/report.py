"""Report section "Random-like weights": trained vs initial, per layer."""

from __future__ import annotations

import math

from ..report._html import figure_html, paragraph, table_html
from ..report._registry import Claim, ReportContext, Section, section
from ._effects import MIN_BULK_FRACTION
from ._verdict import VerdictRules

_COLUMNS = [("layer", "layer"), ("shape", "matrix"), ("verdict", "verdict"), ("outliers", "outliers"),
            ("alpha", "tail α"), ("ks_bulk", "bulk KS to MP"), ("ks_noise", "KS noise level"),
            ("kurtosis", "excess kurtosis"), ("entries_ks", "entries KS"), ("entries_ks_crit", "KS 1% crit."),
            ("init_verdict", "verdict at init"), ("init_outliers", "outliers at init"),
            ("init_alpha", "tail α at init"), ("init_kurtosis", "kurtosis at init")]


_EFFECT_COLUMNS = [("layer", "layer"), ("bulk_fraction", "bulk fraction"),
                   ("outlier_energy", "energy in outliers"), ("ks_bulk_over_noise", "bulk KS / noise level"),
                   ("outliers", "outliers"), ("shuffled_spikes", "outliers after shuffling"),
                   ("pt_bulk_p", "Porter–Thomas p (bulk vectors)"),
                   ("pt_top_p", "Porter–Thomas p (top vectors)"), ("kurtosis_ci", "excess kurtosis [95% CI]"),
                   ("init_kurtosis_ci", "excess kurtosis at init [95% CI]"),
                   ("ks_default_init", "entries KS to U(±1/√fan-in)"),
                   ("ks_initial", "entries KS to initial"), ("ks_initial_crit", "two-sample 1% crit."),
                   ("init_bulk_fraction", "bulk fraction at init"),
                   ("init_outlier_energy", "energy in outliers at init"),
                   ("init_shuffled_spikes", "outliers after shuffling at init")]


def _pick(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


# A layer's bulk reads random-like when at least MIN_BULK_FRACTION of its eigenvalues lie inside the MP
# bulk ("most directions"; why 0.9: see `_effects.MIN_BULK_FRACTION`), the bulk's KS distance to MP is at
# the Gaussian-matrix noise level, and the components of singular vectors from the bulk pass the
# Porter–Thomas test at 1%. Each failure text below names the deciding measure, its value and the bound
# it crossed ("bulk fraction 0.82 < 0.9").
PT_LEVEL = 0.01  # Porter–Thomas rejects at p < 1% (`PorterThomas.rejected`)


def _bulk_ks_text(ls) -> str:
    return (f"bulk KS to MP {ls.mp.ks_bulk:.3g} > Gaussian-matrix noise level {ls.ks_noise:.3g} "
            f"({ls.effects.ks_bulk_over_noise:.1f}x)")


def _pt_text(which: str, pt) -> str:
    return (f"Porter–Thomas on the {which} singular vectors: p = {pt.p_value:.2g} < {PT_LEVEL:g} "
            f"(KS {pt.ks:.3g}, 1% crit. {pt.critical:.3g})")


def fraction_text(x: float) -> str:
    """A bulk fraction to 3 decimals, rounded down (as everywhere in the claims): a fraction below the bound
    is never shown as the bound, and the list of fractions and the deciding one agree (23/32 = 0.71875 reads
    0.718 in both).

    >>> fraction_text(23 / 32), fraction_text(0.8999), fraction_text(1.0)
    ('0.718', '0.899', '1.000')
    """
    return "nan" if math.isnan(x) else f"{math.floor(x * 1000 + 1e-9) / 1000:.3f}"


def bulk_failure(ls) -> str | None:
    """The measure that decides "the bulk is random-like" against layer `ls`, or None when it holds."""
    e = ls.effects
    if e.bulk_fraction < MIN_BULK_FRACTION:
        return (f"bulk fraction {fraction_text(e.bulk_fraction)} < {MIN_BULK_FRACTION:g} "
                f"({ls.mp.p - ls.mp.n_outliers} of "
                f"{ls.mp.p} eigenvalues inside the MP bulk; the {ls.mp.n_outliers} outliers hold "
                f"{e.outlier_energy:.0%} of the spectral energy)")
    if not ls.verdict.bulk_mp:
        return _bulk_ks_text(ls)
    if e.porter_thomas_bulk.rejected:
        return _pt_text("bulk", e.porter_thomas_bulk)
    return None


def gaussian_failure(ls) -> str | None:
    """The measure that decides "the whole matrix is Gaussian" against layer `ls`, or None."""
    w, e = ls.weight, ls.effects
    if not w.gaussian:
        kurt = (f"excess kurtosis {e.kurtosis.estimate:.2f} [{e.kurtosis.low:.2f}, {e.kurtosis.high:.2f}]")
        if w.ks > w.ks_critical:
            return (f"entries vs Gaussian: KS {w.ks:.3g} > 1% crit. {w.ks_critical:.3g} (Anderson–Darling "
                    f"{w.ad:.3g}, crit. {w.ad_critical:.3g}; {kurt})")
        return (f"entries vs Gaussian: Anderson–Darling {w.ad:.3g} > 1% crit. {w.ad_critical:.3g} (KS "
                f"{w.ks:.3g}, crit. {w.ks_critical:.3g}; {kurt})")
    if ls.mp.n_outliers:
        return (f"{ls.mp.n_outliers} outlier(s) above the MP edge + Tracy–Widom margin (largest eigenvalue "
                f"{max(ls.mp.outliers):.4g} > threshold {ls.mp.threshold:.4g}; "
                f"{e.shuffled.n_outliers} survive shuffling)")
    if not ls.verdict.bulk_mp:
        return _bulk_ks_text(ls)
    if e.porter_thomas_top.rejected:
        return _pt_text("top", e.porter_thomas_top)
    return None


def _decided(layers, fail) -> tuple[int, str]:
    failures = [(ls.name, fail(ls)) for ls in layers]
    bad = [f"layer {n}: {f}" for n, f in failures if f is not None]
    return len(layers) - len(bad), ("; does not hold, decided by " + "; ".join(bad) if bad else "")


def _median(xs) -> float:
    xs = sorted(x for x in xs if not math.isnan(x))
    return xs[len(xs) // 2] if xs else float("nan")


def _claims(res) -> list[Claim]:
    judged = [ls for ls in res.layers if ls.verdict.label != "too small" and ls.effects is not None]
    claims = []
    min_side = getattr(res, "settings", {}).get("rules", {}).get("min_side", VerdictRules().min_side)
    if judged:
        ok, why = _decided(judged, bulk_failure)
        claims.append(Claim(
            "Arora et al.: the bulk is random-like (most directions of a trained W look like those of a "
            f"random matrix; at least {MIN_BULK_FRACTION:.0%} of the eigenvalues inside the MP bulk, "
            "the bulk at MP's noise level, bulk singular vectors Porter–Thomas. A Gaussian matrix of the "
            "same shape has all of them inside except for a rare Tracy–Widom false alarm of one eigenvalue "
            f"(bulk fraction ≥ 1 − 1/{min_side} = {1 - 1 / min_side:.4g} at the smallest judged side); the "
            f"threshold allows {1 - MIN_BULK_FRACTION:.0%} of the directions to be learned spikes)",
            f"{ok}/{len(judged)} layers; bulk fraction "
            + ", ".join(fraction_text(ls.effects.bulk_fraction) for ls in judged) + "; outlier energy share "
            + ", ".join(f"{ls.effects.outlier_energy:.0%}" for ls in judged) + "; learned outliers (beyond "
            "the shuffled matrix's) " + ", ".join(str(ls.effects.shuffled.learned_outliers) for ls in judged)
            + why, ok == len(judged)))
        ok, why = _decided(judged, gaussian_failure)
        vs_init = [ls.effects.vs_initial or ls.effects.vs_default_init for ls in judged]
        init_txt = ("; entries KS to the initial law " + ", ".join(
            f"{d.ks:#.3g} (crit. {d.critical:#.2g})" if d is not None else "n/a" for d in vs_init)) \
            if any(d is not None for d in vs_init) else ""
        claims.append(Claim(
            "Strong reading: the whole matrix is Gaussian (Gaussian entries; spectrum and singular vectors "
            "of a Gaussian matrix; panels a and c)",
            f"{ok}/{len(judged)} layers; median excess kurtosis "
            f"{_median([ls.effects.kurtosis.estimate for ls in judged]):.2f}{init_txt}" + why,
            ok == len(judged)))
    if res.init is not None:
        init_judged = [ls for ls in res.init if ls.verdict.label != "too small"]
        bad = [f"layer {ls.name}: {ls.verdict.label} ({ls.verdict.reasons[0]})" for ls in init_judged
               if ls.verdict.label != "random-like"]
        claims.append(Claim("Sanity check: at initialisation every layer's spectrum reads random-like",
                            f"{len(init_judged) - len(bad)}/{len(init_judged)} layers random-like at "
                            "initialisation" + ("; does not hold, decided by the spectrum verdict: "
                                                + "; ".join(bad) if bad else ""),
                            not bad))
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
    for r in rows:
        for pre in ("", "init_"):
            if f"{pre}kurtosis_low" in r:
                r[f"{pre}kurtosis_ci"] = (f"{r[pre + 'kurtosis']:.2f} [{r[pre + 'kurtosis_low']:.2f}, "
                                          f"{r[pre + 'kurtosis_high']:.2f}]")
    effect_cols = [(k, h) for k, h in _EFFECT_COLUMNS if k in rows[0]]
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
        paragraph("Effect sizes: with 10^4-10^5 entries per matrix the tests above reject any trained layer, "
                  "so the table below says how much deviates. Bulk fraction: eigenvalues inside the MP bulk "
                  f"(the bulk claim needs ≥ {MIN_BULK_FRACTION:g}: a Gaussian matrix gives 1 up to a rare "
                  f"false alarm, and {1 - MIN_BULK_FRACTION:.0%} of the directions may be learned spikes); "
                  "energy in outliers: their share of ||W||_F^2; outliers after shuffling: those left when "
                  "the "
                  "entries are permuted (a spike that survives comes from the entry law, e.g. a non-zero "
                  "mean, not from learned structure); Porter–Thomas: the components of singular vectors of "
                  "a random matrix are Gaussian (p-value of a pooled KS test, left and right vectors); "
                  "the entries are also compared with PyTorch's default initialisation U(±1/√fan-in), "
                  "which is uniform (excess kurtosis −1.2) and already fails a Gaussian test, and with the "
                  "initial entries (two-sample KS)."),
        table_html([h for _, h in effect_cols], [[r.get(k) for k, _ in effect_cols] for r in rows]),
        figure_html(summary_figure(res), "Outliers above the MP edge (left) and power-law tail exponent α "
                                         "(right) per layer, trained (blue) vs initial (grey): a random-like "
                                         "layer has few outliers and α above 4 (dashed line)."),
    ]
    shown = _pick(len(res.layers), 2 if ctx.quick else 12)
    for i in shown:
        ls = res.layers[i]
        ini = res.init[i] if res.init is not None else None
        parts.append(figure_html(layer_figure(ls, ini),
                                 f"Layer {ls.name}: " + "; ".join(ls.verdict.reasons[:2]) + ". Look for "
                                 "spikes (magenta ticks) beyond the dashed MP edge in (c), where the "
                                 "trained curve (blue) leaves the Gaussian one (orange) in (d), and a "
                                 "straight tail in (e); grey is the layer at initialisation."))
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
