"""SHADOW's open choices, swept one at a time on the validation split, and the best one tested.

The paper leaves the code layer, ρ, the share and weight of the synthetic samples, when to
start and the input noise open. Each sweep point changes one of them from the configuration's
defaults and trains `seeds` models on the sweep budget's labels, scored on the validation split
and paired by seed with the baseline (same labels, initial weights, batch order). The setting
with the lowest mean validation error (the defaults included) is then trained again and scored
on the test split, paired with the baseline arm's test errors: that verdict, not the sweep's
minimum (which is biased low by the choice), is what the report states.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from .._progress import progress
from ._paired import paired_difference

REFERENCES = (("baseline", None), ("default", None))  # sweep points every sweep has


def setting_label(kind: str, value) -> str:
    """How a sweep point reads in tables: `ratio=0.1`, or `defaults`.

    >>> setting_label("ratio", 0.1), setting_label("default", None)
    ('ratio=0.1', 'defaults')
    """
    return "defaults" if kind == "default" else "baseline" if kind == "baseline" else f"{kind}={value:g}" \
        if isinstance(value, float) else f"{kind}={value}"


def layer_values(cfg, spec) -> list:
    """The layer sweep's values: `("all",)` is every ReLU layer and, on a chain, the output."""
    from .. import nets

    layers = list(cfg.sweep_layers)
    if layers != ["all"]:
        return layers
    probe = nets.load(nets.build(cfg.arch, spec.shape, spec.classes), input_shape=spec.shape)
    if not probe.is_chain:
        return [n.name for n in probe.relu_nodes()]
    return [*probe.relu_layers(), "output"]


def _is_default(cfg, kind: str, value, first_relu) -> bool:
    if kind == "layer":
        return value == cfg.layer or (cfg.layer == "first" and value == first_relu)
    return value == getattr(cfg, kind)


def sweep_choices(cfg, arms: list, size: int, tune, test, *, done: dict, best_done: dict,
                  report: Callable[[list, dict], None]) -> tuple[list[dict], dict]:
    """The sweep points at budget `size` (validation) and the best setting's test verdict.

    Arguments:
        cfg: the `ShadowTrainConfig`.
        arms: the finished arms (the tuned rates and the baseline's test errors are read there).
        tune, test: the budget's data sets scored on validation and on test.
        done, best_done: sweep points and the best setting of a resumed run.
        report: called with the partial sweeps and best after every point.
    """
    from ._experiment import _run

    def tuned(arm: str) -> float:
        return next((a.lr for a in arms if a.arm == arm and a.budget == size), cfg.lrs[0])

    layers = layer_values(cfg, tune.spec)
    first_relu = next((v for v in layers if not isinstance(v, str)), None)
    grid = [*REFERENCES, *[(k, v) for k, v in cfg.sweep_grid() if k != "layer"]]
    grid[2:2] = [("layer", v) for v in layers]
    grid = [(k, v) for k, v in grid if k in ("baseline", "default") or not _is_default(cfg, k, v, first_relu)]
    sweeps: list[dict] = []
    for kind, value in progress(grid, desc="SHADOW sweeps"):
        if (kind, value) in done:
            sweeps.append(done[kind, value])
            continue
        arm = "baseline" if kind == "baseline" else "shadow"
        options = {} if kind in ("baseline", "default") else {kind: value}
        runs = [_run(cfg, tune, arm, tuned(arm), cfg.seed + s, final_only=True, **options)
                for s in range(cfg.seeds)]
        errs = [r[1][-1] for r in runs]
        point = dict(kind=kind, value=value, label=setting_label(kind, value), budget=size, lr=tuned(arm),
                     val_errors=errs, mean=statistics.fmean(errs),
                     std=statistics.stdev(errs) if len(errs) > 1 else 0.0, conditions=[r[2] for r in runs])
        if kind != "baseline":
            base = sweeps[0]["val_errors"]
            point["diff"], point["se"], point["verdict"] = paired_difference(errs, base)
        sweeps.append(point)
        report(sweeps, {})
    best = best_done or _best_on_test(cfg, arms, size, test, sweeps, tuned)
    report(sweeps, best)
    return sweeps, best


def _best_on_test(cfg, arms, size, test, sweeps, tuned) -> dict:
    """Train the best validation setting on the test split, paired with the baseline arm."""
    from ._experiment import _run

    best = min((p for p in sweeps if p["kind"] != "baseline"), key=lambda p: p["mean"])
    options = {} if best["kind"] == "default" else {best["kind"]: best["value"]}

    def test_errors(arm, **opts):
        have = next((a for a in arms if a.arm == arm and a.budget == size), None)
        if have is not None and not opts:
            return list(have.test_errors)
        return [_run(cfg, test, arm, tuned(arm), cfg.seed + s, final_only=True, **opts)[1][-1]
                for s in range(cfg.seeds)]

    errs, base = test_errors("shadow", **options), test_errors("baseline")
    diff, se, verdict = paired_difference(errs, base)
    return dict(kind=best["kind"], value=best["value"], label=best["label"], budget=size,
                val_mean=best["mean"], val_diff=best.get("diff"), test_errors=errs, baseline_test_errors=base,
                mean_diff=diff, se=se, verdict=verdict)
