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
                                      budgets=(1000, None), steps=2500, sweep_layers=(5, 6),
                                      sweep_rhos=(0.25, 0.75), seed=seed)
    if kind not in ("digits", "mnist"):
        raise ValueError(f"unknown data set kind '{kind}'; use digits, mnist or cifar")
    if quick:
        return ShadowTrainConfig(data=data, budgets=(100, None), seeds=MIN_SEEDS, lrs=(0.05,), seed=seed,
                                 steps=150 if kind == "digits" else 100,
                                 max_test=None if kind == "digits" else 1000)
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


def _claim(name: str, arm: str, comps: list[Comparison]) -> tuple[str, str, bool | None]:
    mine = [c for c in comps if c.arm == arm]
    ref = mine[0].reference if mine else ("baseline" if arm == "shadow" else "dropout")
    text = (f"SHADOW lowers test error {'without' if arm == 'shadow' else 'with'} dropout ({name})")
    if not mine:
        return text, "not measured", None
    measured = "; ".join(f"{c.budget} labels: {c.mean_diff * 100:+.2f} ± {c.se * 100:.2f} pts vs {ref} "
                         f"({c.verdict})" for c in mine)
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
        claims += [_claim(name, "shadow", mine), _claim(name, "dropout+shadow", mine)]
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
        "SHADOW (Arora, Liang, Ma): every training batch gets one shadow-model sample x̃ ~ p(x | h) per "
        "real sample, h from the current net's top ReLU layer, with the real label. Four arms run the same "
        "number of gradient steps on the same real batches (SHADOW adds synthetic samples to each step, so "
        "it costs more compute per step, not more steps); learning rates are tuned per arm and budget on a "
        "validation split; seeds pair the arms (same labels, initial weights, batch order). A difference "
        f"counts when the mean paired difference exceeds {se_multiple:g} standard errors; with fewer than "
        f"{MIN_SEEDS} seeds nothing is decided." + (" Quick mode: a reduced configuration (few steps "
                                                      "and seeds)." if rep.quick else ""))]
    numbers = {}
    for name, res in rep.results.items():
        rows = [(a.budget, a.arm, a.lr, a.epochs, a.mean, a.std, len(a.test_errors)) for a in res.arms]
        body.append(f"<h3>{html.escape(name)}</h3>")
        body.append(paragraph(f"{res.config.arch}, {res.config.optimizer}, {res.config.steps} steps per run, "
                              f"{res.config.seeds} seeds"))
        body.append(table_html(["labels", "arm", "lr", "epochs", "test error", "std", "seeds"], rows))
        body.append(figure_html(plot_dropout_vs_shadow(res, title=f"{name}: test error per epoch"),
                                f"{name}: test error per epoch, mean ± std over seeds (largest budget); "
                                "SHADOW helps where dropout+shadow (red) ends below dropout (blue), or "
                                "shadow (orange) below baseline (grey)."))
        if len({a.budget for a in res.arms}) > 1:
            body.append(figure_html(plot_error_vs_budget(res, title=name), f"{name}: final test error "
                                    "against the number of labels per arm; the paper expects SHADOW's "
                                    "gain to be largest at the smallest budget."))
        fig = plot_sweeps(res, title=f"{name} sweep")
        if fig is not None:
            body.append(figure_html(fig, f"{name}: the SHADOW arm's error against the code layer and the "
                                    "keep probability ρ; points below the grey baseline band are gains."))
        for a in res.arms:
            numbers[f"{name} {a.arm} @ {a.budget}"] = f"{a.mean:.4f} ± {a.std:.4f}"
    body.append(table_html(["data", "labels", "arm", "reference", "mean difference", "standard error",
                            "seeds", "verdict"],
                           [(c.data, c.budget, c.arm, c.reference, c.mean_diff, c.se, c.n, c.verdict)
                            for c in rep.comparisons]))
    return Section("SHADOW training", "".join(body), numbers, statement(rep.comparisons), json=rep.to_dict(),
                   claims=[Claim(*c) for c in claims])
