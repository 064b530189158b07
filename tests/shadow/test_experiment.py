"""The SHADOW experiment: arms, equal steps, determinism, CLI, report section (tiny configs)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from reluscope.cli import main
from reluscope.errors import ConfigError
from reluscope.report._registry import ReportContext, Section
from reluscope.shadow import ShadowTrainConfig, ShadowTrainResult, shadow_experiment
from reluscope.shadow import report as shadow_report

TINY = dict(data="digits", arch="mlp:32", budgets=(64,), seeds=2, steps=6, lrs=(0.05,), batch_size=32)


def test_arms_equal_steps_and_determinism():
    cfg = ShadowTrainConfig(**TINY, sweep_rhos=(0.25,), sweep_layers=("all",))
    res = shadow_experiment(cfg)
    assert [a.arm for a in res.arms] == ["baseline", "dropout", "shadow", "dropout+shadow"]
    assert {a.epochs for a in res.arms} == {3}  # 6 steps of 32 on 64 labels, every arm
    for a in res.arms:
        assert len(a.test_errors) == 2 and len(a.curve_mean) == 3 and 0 <= a.mean <= 1
        # the SHADOW arms log the theory's conditions per seed: a 32-wide code of a 64-pixel input
        assert len(a.conditions) == (2 if "shadow" in a.arm else 0)
        assert all(c["narrower"] and c["code_width"] == 32 and c["depth"] == 1 for c in a.conditions)
    # one choice at a time from the defaults (layer "all" is the first ReLU, the default, and the output)
    assert [(s["kind"], s["value"]) for s in res.sweeps] == [("baseline", None), ("default", None),
                                                             ("layer", "output"), ("rho", 0.25)]
    base = res.sweeps[0]["val_errors"]
    for p in res.sweeps[1:]:  # scored on validation, paired by seed with the baseline's validation errors
        assert p["diff"] == pytest.approx(sum(a - b for a, b in zip(p["val_errors"], base)) / 2)
    best = res.best
    assert best["val_mean"] == min(p["mean"] for p in res.sweeps[1:])
    assert best["baseline_test_errors"] == res.arm("baseline", 64).test_errors
    if best["kind"] == "default":
        assert best["test_errors"] == res.arm("shadow", 64).test_errors
    json.dumps(res.to_dict())
    again = shadow_experiment(replace(cfg, arms=("shadow",), sweep_layers=()))  # seeded: same numbers
    assert again.arms[0].test_errors == res.arm("shadow", 64).test_errors
    assert again.sweeps == [p for p in res.sweeps if p["kind"] != "layer"]
    assert again.best["baseline_test_errors"] == best["baseline_test_errors"]  # rerun: the same baseline
    assert {c.verdict for c in res.comparisons()} == {"undecided (2 seeds)"}  # 2 seeds decide nothing


def test_sparse_curves_keep_the_numbers_of_the_dense_ones():
    # 64 labels, batch 32, 40 steps: 20 epochs; 5 log-spaced evaluations instead of 20
    dense = shadow_experiment(ShadowTrainConfig(**{**TINY, "steps": 40}, arms=("shadow",)))
    sparse = shadow_experiment(ShadowTrainConfig(**{**TINY, "steps": 40}, arms=("shadow",), curve_points=5))
    a, b = dense.arms[0], sparse.arms[0]
    assert a.curve_epochs == list(range(1, 21)) and b.curve_epochs == [1, 2, 4, 9, 20]
    assert b.test_errors == a.test_errors
    assert b.curve_mean == [a.curve_mean[e - 1] for e in b.curve_epochs]
    with pytest.raises(ConfigError, match="curve_points"):
        ShadowTrainConfig(curve_points=0)


def test_lr_tuning_on_validation():
    res = shadow_experiment(ShadowTrainConfig(**{**TINY, "lrs": (0.001, 0.1), "seeds": 1},
                                              arms=("baseline",)))
    a = res.arms[0]
    assert set(a.val_errors) == {"0.001", "0.1"}
    assert a.lr == min((0.001, 0.1), key=lambda r: a.val_errors[str(r)])


def test_bad_configs():
    with pytest.raises(ConfigError, match="arm"):
        ShadowTrainConfig(arms=("magic",))
    with pytest.raises(ConfigError, match="budget"):
        shadow_experiment(ShadowTrainConfig(**{**TINY, "budgets": (10**6,)}))


def test_cli_train_and_report_section(tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.json"
    code = main(["shadow", "train", "--data", "digits", "--arch", "mlp:32", "--budgets", "64", "--seeds", "2",
                 "--steps", "4", "--json", str(out), "--plot", str(tmp_path / "c.png"), "-q"])
    assert code == 0 and "dropout+shadow" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert len(data["arms"]) == 4 and len(data["comparisons"]) == 2
    assert (tmp_path / "c.png").stat().st_size > 0
    # the data set's configuration underneath, each option given on top of it
    assert data["config"]["budgets"] == [64] and data["config"]["lrs"] == [0.05]
    assert main(["shadow", "train", "--data", "digits", "--arch", "mlp:16", "--budgets", "64", "--seeds", "1",
                 "--steps", "8", "--optimizer", "adam", "--lrs", "0.01", "--curve-points", "2",
                 "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["optimizer"] == "adam" and data["arms"][0]["curve_epochs"] == [1, 8]
    assert main(["shadow", "train", "--budgets", "ten", "-q"]) == 2
    monkeypatch.setattr(shadow_report, "quick_train_config",
                        lambda seed=0: ShadowTrainConfig(**TINY, seed=seed))
    sec = shadow_report.build_training(ReportContext(model=None, net=None, data=None, quick=True))
    assert isinstance(sec, Section) and "data:image/png" in sec.body and len(sec.claims) == 2


@pytest.mark.parametrize("which,arch", [("mnist_dir", "mlp:32"), ("cifar_dir", "cifar_cnn")])
def test_reduced_runs_on_mnist_and_cifar(request, which, arch):
    path = request.getfixturevalue(which)
    cfg = ShadowTrainConfig(data=str(path), arch=arch, budgets=(16,), seeds=1, steps=1, lrs=(0.05,),
                            batch_size=16, max_test=50)
    res = shadow_experiment(cfg)
    assert len(res.arms) == 4 and all(0 <= a.mean <= 1 for a in res.arms)


def test_progress_reports_every_finished_arm(tmp_path, monkeypatch):
    seen = []
    res = shadow_experiment(ShadowTrainConfig(**TINY), on_progress=lambda r: seen.append(len(r.arms)))
    assert seen == [1, 2, 3, 4] and len(res.arms) == 4

    # a run stopped after its second arm keeps the two finished arms in the --json file
    from reluscope.shadow import _experiment

    real, calls = _experiment._arm, []

    def stop_after_two(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_experiment, "_arm", stop_after_two)
    out = tmp_path / "partial.json"
    code = main(["shadow", "train", "--data", "digits", "--arch", "mlp:32", "--budgets", "64", "--seeds", "2",
                 "--steps", "4", "--json", str(out), "-q"])
    assert code == 130 and [a["arm"] for a in json.loads(out.read_text())["arms"]] == ["baseline", "dropout"]


def test_saved_results_read_back_and_render(tmp_path, capsys):
    res = shadow_experiment(ShadowTrainConfig(**TINY, sweep_rhos=(0.25,)))
    saved = json.loads(json.dumps(res.to_dict()))  # as a --json file holds it
    back = ShadowTrainResult.from_dict(saved)
    assert json.loads(json.dumps(back.to_dict())) == saved
    # a partial file (a stopped run: two arms) renders too, with its verdicts undecided
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({**saved, "arms": saved["arms"][:2]}))
    full = tmp_path / "full.json"
    full.write_text(json.dumps(saved))
    assert main(["shadow", "report", str(full), str(partial), "--out", str(tmp_path / "r"), "-q"]) == 0
    page = (tmp_path / "r" / "shadow-training.html").read_text()
    assert page.count("dropout+shadow") >= 2 and "data:image/png" in page
    (tmp_path / "bad.json").write_text('{"arms": []}')
    capsys.readouterr()
    assert main(["shadow", "report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "r")]) == 2
    assert "not a SHADOW training result" in capsys.readouterr().err


def test_resume_continues_exactly_where_a_run_stopped(tmp_path, capsys):
    cfg = ShadowTrainConfig(**TINY, sweep_rhos=(0.25, 0.75))
    whole = shadow_experiment(cfg)
    saved = json.loads(json.dumps(whole.to_dict()))
    stopped = ShadowTrainResult.from_dict({**saved, "arms": saved["arms"][:2], "sweeps": saved["sweeps"][:1],
                                           "best": {}})
    calls = []
    resumed = shadow_experiment(cfg, resume=stopped, on_progress=lambda r: calls.append(len(r.arms)))
    assert _timeless(json.loads(json.dumps(resumed.to_dict()))) == _timeless(saved)  # seeded: same numbers
    assert calls[:2] == [1, 2]  # the saved arms come back first, then the rest run
    with pytest.raises(ConfigError, match="differs in steps"):
        shadow_experiment(replace(cfg, steps=7), resume=stopped)
    # the CLI: --resume keeps the file's arms; without --json it says what is missing
    out = tmp_path / "s.json"
    args = ["shadow", "train", "--data", "digits", "--arch", "mlp:32", "--budgets", "64", "--seeds", "2",
            "--steps", "4", "--json", str(out), "-q"]
    assert main(args) == 0
    first = json.loads(out.read_text())
    assert main([*args, "--resume"]) == 0
    assert json.loads(out.read_text())["arms"] == first["arms"]  # kept, not rerun (same seconds too)
    assert main(["shadow", "train", "--resume", "-q"]) == 2
    assert main([*args[:-3], "--steps", "5", "--json", str(out), "--resume", "-q"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def _timeless(d: dict) -> dict:
    return {**d, "arms": [{k: v for k, v in a.items() if k != "seconds"} for a in d["arms"]]}
