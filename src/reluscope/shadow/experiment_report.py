"""SHADOW training, judged honestly: paired comparisons, per-data-set configurations, the
reproduction part (`reproduce_part`) and its report section.

Arms of one seed share the labelled subset, the initial weights and the batch order
(`shadow_experiment` seeds them alike), so the effect of SHADOW is measured on paired
differences `err(arm, seed) − err(reference, seed)`. It is called "helps" / "hurts" when the
mean difference exceeds `se_multiple` (default 2) standard errors of those differences,
and "no clear effect" otherwise; with fewer than `MIN_SEEDS` seeds nothing is decided.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from .._display import Tabular
from .._frames import frame
from ..report._html import figure_html, paragraph, table_html
from ..report._registry import Claim, Section
from ._experiment import ShadowTrainConfig, shadow_experiment
from ._paired import MIN_SEEDS, Comparison, paired_comparisons

# ----------------------------------------------------------------------------- configurations


def experiment_config(kind: str, data: str, quick: bool = True, seed: int = 0) -> ShadowTrainConfig:
    """The quick (CI, well under a minute on 2 cores) or full configuration of one data set.

    Arguments:
        kind: "digits", "mnist" (MLP 256-256) or "cifar" (the CIFAR CNN with Adam: plain
            SGD at 0.01 barely leaves chance in an epoch).
        data: the data source (a path for mnist and cifar).

    >>> experiment_config("digits", "digits").seeds  # the fewest that decide anything
    3
    >>> experiment_config("mnist", "m", quick=False).budgets
    (100, 500, 1000, None)
    """
    if kind == "cifar":
        if quick:  # 2 epochs of 500 labels; SHADOW reverses 7 layers, about 3x a plain CNN step
            return ShadowTrainConfig(data=data, arch="cifar_cnn", optimizer="adam", lrs=(1e-3,),
                                     budgets=(500,), seeds=1, steps=16, max_test=500, seed=seed)
        return ShadowTrainConfig.full(data, arch="cifar_cnn", optimizer="adam", lrs=(3e-4, 1e-3),
                                      budgets=(1000, None), steps=2500, sweep_layers=("top", "output"),
                                      sweep_rhos=(1.0,), sweep_ratios=(1.0,), sweep_weights=(0.5,),
                                      sweep_warmups=(0.5,), sweep_input_dropouts=(), seed=seed)
    if kind not in ("digits", "mnist"):
        raise ValueError(f"unknown data set kind '{kind}'; use digits, mnist or cifar")
    if quick:
        # one sweep point (the top layer, the old default) exercises the sweep and the best-setting test
        return ShadowTrainConfig(data=data, budgets=(100, None), seeds=MIN_SEEDS, lrs=(0.05,), seed=seed,
                                 steps=150 if kind == "digits" else 100,
                                 max_test=None if kind == "digits" else 1000, sweep_layers=("top",))
    return ShadowTrainConfig.full(data, seed=seed)


# ----------------------------------------------------------------------------- reproduction


@dataclass(frozen=True)
class TrainingReproduction(Tabular):
    """The SHADOW experiment on several data sets, with paired comparisons."""

    results: dict  # data set name -> ShadowTrainResult
    comparisons: tuple[Comparison, ...]
    quick: bool

    def to_dict(self) -> dict:
        return dict(quick=self.quick, results={k: v.to_dict() for k, v in self.results.items()},
                    comparisons=[c.to_dict() for c in self.comparisons])

    def to_frame(self):
        """One row per data set, arm and budget (`data` then `ArmResult.frame_row`)."""
        return frame([dict(data=name, **a.frame_row()) for name, res in self.results.items()
                      for a in res.arms])


def conditions_text(conditions: list) -> str:
    """The theory's conditions over a run's seeds, in words (see `ShadowAugment.conditions`).

    >>> c = dict(depth=1, nonzeros=[98.2, 301.5], code_width=256, input_width=784, narrower=True,
    ...          increasing=True, below_square=True, holds=True)
    >>> conditions_text([c, c])
    'hold (k 98 → 302; code 256 of 784)'
    >>> conditions_text([dict(c, code_width=1024, narrower=False, holds=False)])
    'fail: code wider than the input (k 98 → 302; code 1024 of 784)'
    """
    known = [c for c in conditions if c]
    if not known:
        return "—"
    first = known[0]
    ks = " → ".join(f"{k:.0f}" for k in first["nonzeros"])
    detail = f"k {ks}; code {first['code_width']} of {first['input_width']}"
    failed = [words for key, words in (("narrower", "code wider than the input"),
                                       ("increasing", "nonzeros do not grow downwards (k < t fails)"),
                                       ("below_square", "input nonzeros ≥ k² (t < k² fails)"))
              if not all(c[key] for c in known)]
    return f"fail: {'; '.join(failed)} ({detail})" if failed else f"hold ({detail})"


def _claim(name: str, arm: str, comps: list[Comparison], res=None) -> tuple[str, str, bool | None]:
    mine = [c for c in comps if c.arm == arm]
    ref = mine[0].reference if mine else ("baseline" if arm == "shadow" else "dropout")
    text = (f"SHADOW lowers test error {'without' if arm == 'shadow' else 'with'} dropout ({name})")
    if not mine:
        return text, "not measured", None
    measured = "; ".join(f"{c.budget} labels: {c.mean_diff * 100:+.2f} ± {c.se * 100:.2f} pts vs {ref} "
                         f"({c.verdict})" for c in mine)
    if res is not None:
        conds = [c for a in res.arms if a.arm == arm for c in a.conditions]
        measured += f"; the theory's conditions {conditions_text(conds)}"
    verdicts = [c.verdict for c in mine]
    helps, hurts = verdicts.count("helps"), verdicts.count("hurts")
    if any(v.startswith("undecided") for v in verdicts):
        holds = None
    elif helps and not hurts:
        holds = True
    elif helps and hurts:
        holds = None  # depends on the budget; the measured text says where
    else:
        holds = False  # no clear effect anywhere, or it hurts
    return text, measured, holds


def _best_claim(name: str, res) -> tuple[str, str, bool | None]:
    """The best setting of the sweep, chosen on validation, judged on test against the baseline."""
    text = f"SHADOW's best setting (chosen on validation) lowers test error ({name})"
    b = res.best
    if not b:
        return text, "not measured (no sweep)", None
    measured = (f"best of {len(res.sweeps) - 1} settings at {b['budget']} labels: {b['label']} "
                f"(validation {b['val_mean']:.4f}); test {b['mean_diff'] * 100:+.2f} ± "
                f"{b['se'] * 100:.2f} pts vs baseline over {len(b['test_errors'])} seeds ({b['verdict']})")
    holds = None if b["verdict"].startswith("undecided") else b["verdict"] == "helps"
    return text, measured, holds


def reproduce_part(quick: bool, seed: int, mnist: str, cifar: str, *, se_multiple: float = 2.0,
                   configs: dict | None = None) -> tuple[TrainingReproduction, list[tuple]]:
    """Run the SHADOW experiment on digits, MNIST and CIFAR-10 and check the paper's claims.

    Arguments:
        quick: the reduced configuration (each data set well under a minute on 2 cores).
        seed: the first seed.
        mnist, cifar: data sources (empty string: skip that data set).
        se_multiple: standard errors a paired difference must exceed to count.
        configs: `{name: ShadowTrainConfig}` replacing the built-in configurations (tests).

    Returns:
        `(TrainingReproduction, claims)`; claims are tuples `(claim in the paper, what we
        measured, holds)` with `holds` None when undecided (too few seeds, or budget-dependent).
    """
    if configs is None:
        configs = {"digits": experiment_config("digits", "digits", quick, seed)}
        if mnist:
            configs["MNIST"] = experiment_config("mnist", mnist, quick, seed)
        if cifar:
            configs["CIFAR-10"] = experiment_config("cifar", cifar, quick, seed)
    return summarise({name: shadow_experiment(cfg) for name, cfg in configs.items()}, quick, se_multiple)


def summarise(results: dict, quick: bool, se_multiple: float = 2.0
              ) -> tuple[TrainingReproduction, list[tuple]]:
    """Paired comparisons and the paper's two claims for each `{data set name: result}`."""
    comps, claims = [], []
    for name, res in results.items():
        mine = list(paired_comparisons(res, name, se_multiple))
        comps += mine
        claims += [_claim(name, "shadow", mine, res), _claim(name, "dropout+shadow", mine, res)]
        if res.best:
            claims.append(_best_claim(name, res))
    return TrainingReproduction(dict(results), tuple(comps), quick), claims


def statement(comps) -> str:
    """Plain sentences: how often SHADOW helps, does nothing, hurts; then where, per data set.

    >>> from reluscope.shadow._paired import Comparison
    >>> c = [Comparison("MNIST", 100, "shadow", "baseline", 0.03, 0.005, 5, "hurts"),
    ...      Comparison("MNIST", 500, "shadow", "baseline", 0.02, 0.004, 5, "hurts"),
    ...      Comparison("MNIST", 100, "dropout+shadow", "dropout", 0.001, 0.004, 5, "no clear effect")]
    >>> print(statement(c))
    Of 3 comparisons, SHADOW makes no clear difference in 1 and hurts in 2. MNIST: without dropout it \
hurts at 100, 500 labels; with dropout it makes no clear difference at 100 labels.
    """
    verbs = {"helps": "helps", "no clear effect": "makes no clear difference", "hurts": "hurts"}
    counts = [f"{verb} in {n}" for v, verb in verbs.items() if (n := sum(c.verdict == v for c in comps))]
    undecided = sum(c.verdict not in verbs for c in comps)
    if undecided:
        counts.append(f"is undecided in {undecided} (too few seeds)")
    joined = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else "".join(counts)
    text = [f"Of {len(comps)} comparisons, SHADOW {joined}."]
    for data in dict.fromkeys(c.data for c in comps):
        clauses = []
        for with_dropout in (False, True):
            mine = [c for c in comps if c.data == data and ("dropout" in c.arm) == with_dropout]
            by_verdict: dict[str, list[str]] = {}
            for c in mine:
                by_verdict.setdefault(verbs.get(c.verdict, "is undecided"), []).append(str(c.budget))
            if by_verdict:
                where = "; ".join(f"{v} at {', '.join(b)} labels" for v, b in by_verdict.items())
                clauses.append(f"{'with' if with_dropout else 'without'} dropout it {where}")
        text.append(f"{data}: {'; '.join(clauses)}.")
    return " ".join(text)


def training_section(rep: TrainingReproduction, claims: list[tuple], se_multiple: float = 2.0) -> Section:
    """The report section of a `reproduce_part` result: tables, curves, sweeps, verdicts."""
    from ._experiment_plots import plot_dropout_vs_shadow, plot_error_vs_budget, plot_sweeps

    body = [paragraph(
        "SHADOW (Arora, Liang, Ma): training batches get shadow-model samples x̃ ~ p(x | h) of their real "
        "samples, h from the current net, with the real labels. The paper gives no protocol; the defaults "
        "are the theory's (codes from the first hidden layer, ρ = 0.75, a quarter of a synthetic sample per "
        "real one, each at its real image's norm and clipped to the batch's range), and every run logs "
        "whether the theory's conditions held on its codes (code narrower than the input; nonzeros growing "
        "from the code down, k < t < k²). Four arms run the same number of gradient steps on the same real "
        "batches; learning rates are tuned per arm and budget on a validation split; seeds pair the arms "
        "(same labels, initial weights, batch order). A difference counts when the mean paired difference "
        f"exceeds {se_multiple:g} standard errors; with fewer than {MIN_SEEDS} seeds nothing is decided. The "
        "open choices are swept one at a time on the validation split, and the best is tested on the test "
        "split." + (" Quick mode: a reduced configuration (few steps and seeds)." if rep.quick else ""))]
    numbers = {}
    for name, res in rep.results.items():
        cfg = res.config
        rows = [(a.budget, a.arm, a.lr, a.epochs, a.mean, a.std, len(a.test_errors),
                 conditions_text(a.conditions) if "shadow" in a.arm else "") for a in res.arms]
        body.append(f"<h3>{html.escape(name)}</h3>")
        body.append(paragraph(f"{cfg.arch}, {cfg.optimizer}, {cfg.steps} steps per run, {cfg.seeds} seeds; "
                              f"SHADOW: layer {cfg.layer}, ρ {cfg.rho:g}, ratio {cfg.ratio:g}, "
                              f"scale {cfg.scale}, clip {cfg.clamp or 'none'}, weight "
                              f"{'batch mean' if cfg.weight is None else f'{cfg.weight:g}'}, warm-up "
                              f"{cfg.warmup:.0%}, input dropout {cfg.input_dropout:g}"))
        body.append(table_html(["labels", "arm", "lr", "epochs", "test error", "std", "seeds",
                                "theory's conditions"], rows))
        body.append(figure_html(plot_dropout_vs_shadow(res, title=f"{name}: test error per epoch"),
                                f"{name}: test error per epoch, mean ± std over seeds (largest budget); "
                                "SHADOW helps where dropout+shadow (red) ends below dropout (blue), or "
                                "shadow (orange) below baseline (grey)."))
        if len({a.budget for a in res.arms}) > 1:
            body.append(figure_html(plot_error_vs_budget(res, title=name), f"{name}: final test error "
                                    "against the number of labels per arm; the paper expects SHADOW's "
                                    "gain to be largest at the smallest budget."))
        if res.sweeps:
            body.append(paragraph(f"{name}: the open choices, one at a time from the defaults, at "
                                  f"{res.sweeps[0]['budget']} labels, on the validation split (paired with "
                                  "the baseline's validation errors)."))
            body.append(table_html(
                ["setting", "validation error", "std", "vs baseline", "standard error", "verdict",
                 "theory's conditions"],
                [(p.get("label", p["kind"]), p["mean"], p["std"], p.get("diff", ""), p.get("se", ""),
                  p.get("verdict", "reference"), conditions_text(p.get("conditions", [])))
                 for p in res.sweeps]))
            fig = plot_sweeps(res, title=f"{name} sweep")
            if fig is not None:
                body.append(figure_html(fig, f"{name}: validation error of each setting (mean ± std "
                                        "over seeds); points below the grey baseline band are gains on "
                                        "validation."))
        if res.best:
            b = res.best
            body.append(paragraph(
                f"{name}: best setting on validation: {b['label']}. On the test split, paired with the "
                f"baseline over {len(b['test_errors'])} seeds: {b['mean_diff'] * 100:+.2f} ± "
                f"{b['se'] * 100:.2f} points ({b['verdict']})."))
        for a in res.arms:
            numbers[f"{name} {a.arm} @ {a.budget}"] = f"{a.mean:.4f} ± {a.std:.4f}"
    body.append(table_html(["data", "labels", "arm", "reference", "mean difference", "standard error",
                            "seeds", "verdict"],
                           [(c.data, c.budget, c.arm, c.reference, c.mean_diff, c.se, c.n, c.verdict)
                            for c in rep.comparisons]))
    return Section("SHADOW training", "".join(body), numbers, statement(rep.comparisons), json=rep.to_dict(),
                   claims=[Claim(*c) for c in claims])
