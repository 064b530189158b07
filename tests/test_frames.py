"""`to_frame()` and `_repr_html_` of every result type: the table's numbers are those of `to_dict()`
(read back from the dict, not recomputed by the same code), the figure is embedded where the
analysis has one, and a missing pandas gives one line."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

import reluscope
from reluscope import data, jacobian, nets, shadow, spectrum, teacher
from reluscope import train as T
from reluscope.errors import DependencyError
from reluscope.report._registry import Claim
from reluscope.shadow import _theory
from reluscope.shadow._paired import Comparison

pd = pytest.importorskip("pandas")


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b or (a is None and isinstance(b, float) and math.isnan(b)) or \
            (b is None and isinstance(a, float) and math.isnan(a))
    if isinstance(a, str) or isinstance(b, str) or isinstance(a, bool) or isinstance(b, bool):
        return a == b
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-15)


def check_html(result, figure: bool):
    h = result._repr_html_()
    assert "<table" in h and type(result).__name__ in h
    assert ("<img" in h) == figure


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


# ---------------------------------------------------------------- spectrum


@pytest.fixture(scope="module")
def spec_result():
    torch.manual_seed(0)
    return spectrum.analyze(nets.mlp([64, 128, 10]), init_model=True)


def test_spectrum_frame_matches_dict(spec_result):
    df, d = spec_result.to_frame(), spec_result.to_dict()
    assert len(df) == len(d["layers"])
    ww = {"layer", "longname", "alpha", "num_spikes", "mp_sigma", "sigma_mp", "log_spectral_norm",
          "stable_rank", "num_pl_spikes", "xmin", "log_norm", "mp_softrank"}
    assert ww <= set(df.columns) and "init_alpha" in df.columns
    for row, lay, ini in zip(df.to_dict("records"), d["layers"], d["init"]):
        sv = np.array(lay["singular_values"])
        assert row["layer"] == row["longname"] == lay["name"]
        assert close(row["alpha"], lay["tail"]["alpha"]) and close(row["xmin"], lay["tail"]["xmin"])
        assert close(row["num_spikes"], lay["mp"]["n_outliers"]) and row["verdict"] == lay["verdict"]["label"]
        assert close(row["mp_sigma"], math.sqrt(lay["mp"]["sigma2"]))
        assert close(row["log_spectral_norm"], 2 * math.log10(sv[0]))
        assert close(row["stable_rank"], float((sv**2).sum() / sv[0] ** 2))
        assert close(row["init_alpha"], ini["tail"]["alpha"])
        assert close(row["ks_bulk"], lay["mp"]["ks_bulk"])


def test_spectrum_columns_follow_weightwatcher_definitions(spec_result):
    """WeightWatcher (weightwatcher.py, apply_norm_metrics / mp_fit): evals = singular values squared
    of W; log_spectral_norm = log10(max evals); stable_rank = sum evals / max evals; sigma_mp is the
    MP sigma of the ESD rescaled to mean eigenvalue 1 (about 1 for a Gaussian matrix)."""
    model = nets.mlp([64, 128, 10])
    w = model[1].weight.detach().double().numpy()
    ev = np.linalg.svd(w, compute_uv=False) ** 2
    row = spectrum.analyze(model).to_frame().iloc[0]
    assert row["log_spectral_norm"] == pytest.approx(np.log10(ev.max()), rel=1e-10)
    assert row["stable_rank"] == pytest.approx(ev.sum() / ev.max(), rel=1e-10)
    assert row["norm"] == pytest.approx((w**2).sum(), rel=1e-10)
    g = spectrum.analyze_matrix(np.random.default_rng(1).standard_normal((400, 200)) * 3.0).frame_row()
    assert g["sigma_mp"] == pytest.approx(1.0, abs=0.05) and g["mp_sigma"] == pytest.approx(3.0, rel=0.05)


def test_spectrum_parts_and_html(spec_result):
    ls = spec_result.layers[0]
    assert ls.to_frame().iloc[0]["alpha"] == ls.tail.alpha
    mp = ls.mp.to_frame().iloc[0]
    assert mp["n_outliers"] == ls.mp.n_outliers and close(mp["sigma2"], ls.mp.to_dict()["sigma2"])
    for part in (ls.tail, ls.weight, ls.verdict):
        assert len(part.to_frame()) == 1
    check_html(spec_result, figure=True)
    check_html(ls, figure=True)
    check_html(ls.mp, figure=False)


# ---------------------------------------------------------------- jacobian


@pytest.fixture(scope="module")
def jac(digits):
    net = nets.load(nets.mlp([64, 16, 10]), input_shape=(1, 8, 8))
    return net, digits.test.x[:3]


def test_jacobian_spectra_frame(jac):
    net, x = jac
    sp = jacobian.spectra(net, x)
    df, d = sp.to_frame(), sp.to_dict()
    assert len(df) == sum(len(lay["rank"]) for lay in d["layers"])
    assert {"output", "layer", "stage", "sample", "rank", "condition", "sigma_max", "sigma_min",
            "error_bound_rel"} <= set(df.columns)
    rows = iter(df.to_dict("records"))
    for lay in d["layers"]:
        for b in range(len(lay["rank"])):
            row = next(rows)
            r = int(lay["rank"][b])
            assert row["output"] == lay["output"]["index"] and row["layer"] == lay["output"]["name"]
            assert row["sample"] == b and row["rank"] == r and row["method"] == lay["method"][b]
            assert close(row["condition"], lay["condition"][b])
            assert close(row["sigma_max"], lay["singular_values"][b][0])
            assert close(row["sigma_min"], lay["singular_values"][b][r - 1])
            assert close(row["error_bound_rel"], lay["error_bound"][b])
    assert len(sp.layers[0].to_frame()) == 3
    check_html(sp, figure=True)


def test_jacobian_lemma_and_masks(jac):
    net, x = jac
    checks = jacobian.lemma_checks(net, x)
    df = reluscope.to_frame(checks)
    assert len(df) == len(checks)
    for row, c in zip(df.to_dict("records"), checks):
        d = c.to_dict()
        assert row["layer"] == d["output"]["name"] and row["sample"] == d["sample"]
        for k in ("sigma_min", "c_bound", "projected_bound", "ratio", "holds", "kept"):
            assert close(row[k], d[k])
    check_html(checks[0], figure=False)
    mp = jacobian.check_mask_product(net, x)
    row, d = mp.to_frame().iloc[0], mp.to_dict()
    assert close(row["max_rel_error"], d["max_rel_error"]) and bool(row["ok"]) == d["ok"]


# ---------------------------------------------------------------- shadow


@pytest.fixture(scope="module")
def relu_net():
    torch.manual_seed(0)
    return nets.load(nets.mlp([64, 32, 16, 10]), input_shape=(64,))


def test_reconstruction_frame(relu_net, digits):
    rec = shadow.reconstruct(relu_net, digits.test.x[:4].flatten(1))
    df, d = rec.to_frame(), rec.to_dict()
    assert len(df) == 2 * len(d["layers"]) and "error_rel_mean_input" in df.columns
    for lay in d["layers"]:
        for weights, by_kind in lay["errors"].items():
            row = df[(df["layer"] == lay["layer"]) & (df["weights"] == weights)].iloc[0]
            for kind, by_m in by_kind.items():
                for m, v in by_m.items():
                    assert close(row[f"error_rel_{kind}_{m}"], v)
    check_html(rec, figure=True)


def test_reversibility_frame(relu_net, digits):
    revs = shadow.reversibility_by_layer(relu_net, digits.test.x[:8].flatten(1), generator=0)
    df = reluscope.to_frame(revs)
    assert len(df) == len(revs)
    for row, r in zip(df.to_dict("records"), revs):
        d = r.to_dict()
        assert row["name"] == d["name"] and close(row["theta"], d["theta"]) and close(row["k"], d["k"])
        for rule, v in d["errors"].items():
            assert close(row[f"error_rel_{rule}"], v)
            assert close(row[f"error_rel_std_{rule}"], d["errors_std"][rule])
    check_html(revs[0], figure=False)


def test_theory_frames():
    t1 = _theory.theorem1(ns=(256,), ks=(8, 16), ratios=(1 / 4, 1 / 8), seeds=1, codes=4)
    ml = _theory.multilayer(2, widths=[512, 256, 128], k_bottom=400, k_top=24, middle=(48, 96), seeds=1,
                            codes=8)
    res = _theory.TheoryResult(t1, [ml], False)
    d = res.to_dict()
    df1 = t1.to_frame()
    assert len(df1) == len(d["theorem1"]["runs"])
    for row, run in zip(df1.to_dict("records"), d["theorem1"]["runs"]):
        assert row["n"] == run["n"] and close(row["error_rel_bound"], run["bound"])
        for rule, v in run["errors"].items():
            assert close(row[f"error_rel_{rule}"], v)
    dfm = ml.to_frame()
    for row, run in zip(dfm.to_dict("records"), d["multilayer"][0]["runs"]):
        assert row["k_top"] == run["ks"][0] and close(row["eps_zero"], run["eps_zero"])
        for rule in run["eps"]:
            assert close(row[f"eps_{rule}"], run["eps"][rule])
            assert close(row[f"error_rel_{rule}"], run["relative"][rule])
    df = res.to_frame()
    assert df.columns[0] == "experiment" and len(df) == len(df1) + len(dfm)
    assert set(df["experiment"]) == {"theorem1", "theorem3.1"}
    check_html(res, figure=True)
    check_html(ml, figure=True)


@pytest.fixture(scope="module")
def shadow_train():
    cfg = shadow.ShadowTrainConfig(data="digits", arch="mlp:16", budgets=(64,), seeds=2, steps=4, lrs=(0.05,),
                                   batch_size=32, arms=("dropout", "dropout+shadow"), curve_points=3)
    return shadow.shadow_experiment(cfg)


def test_shadow_train_frames(shadow_train):
    res = shadow_train
    df, d = res.to_frame(), res.to_dict()
    assert {"arm", "budget", "test_error_mean", "test_error_std", "time_s"} <= set(df.columns)
    for row, arm in zip(df.to_dict("records"), d["arms"]):
        assert row["arm"] == arm["arm"] and row["budget"] == arm["budget"]
        assert row["seeds"] == len(arm["test_errors"])
        assert close(row["test_error_mean"], arm["mean"]) and close(row["test_error_std"], arm["std"])
        assert close(row["time_s"], arm["seconds"])
    comps = res.comparisons()
    cdf = reluscope.to_frame(list(comps))
    for row, c in zip(cdf.to_dict("records"), d["comparisons"]):
        assert close(row["mean_diff"], c["mean_diff"]) and row["verdict"] == c["verdict"]
    check_html(res, figure=True)
    check_html(res.arms[0], figure=False)
    from reluscope.shadow.experiment_report import TrainingReproduction

    rep = TrainingReproduction({"digits": res}, tuple(comps), True)
    assert list(rep.to_frame()["data"]) == ["digits"] * len(res.arms)


# ---------------------------------------------------------------- teacher


def test_fc_frame():
    res = teacher.run_fc(teacher.FCConfig(widths=(4, 5), multi=1, n_train=640, n_eval=64, epochs=1))
    df, d = res.to_frame(), res.to_dict()
    assert list(df["layer"]) == [1, 2]
    for i, row in enumerate(df.to_dict("records")):
        assert close(row["mean_best"], d["mean_best"][i]) and close(row["matched_0.9"], d["matched_0.9"][i])
        assert close(row["matched_0.95"], d["matched_0.95"][i]) and row["teacher_nodes"] == len(d["best"][i])
    check_html(res, figure=True)
    from reluscope.teacher.report import Reproduction

    rep = Reproduction(res, [teacher.check_batchnorm_projection(torch.randn(8, 2), torch.randn(8, 2))])
    rdf = rep.to_frame()
    assert list(rdf["reference_mean_best"]) == list(rep.reference[:2])


def test_lc_frames():
    res = teacher.run_lc(teacher.LCConfig(n_train=400, n_eval=200, epochs=1))
    df, d = res.to_frame(), res.to_dict()
    assert len(df) == len(d["levels"])
    for row, lv in zip(df.to_dict("records"), d["levels"]):
        assert row["level"] == lv["level"] and close(row["mean_correlation"], lv["mean_correlation"])
        assert close(row["matched_0.9"], lv["matched_0.9"])
    lv, ld = res.levels[0], d["levels"][0]
    ldf = lv.to_frame()
    assert len(ldf) == np.asarray(ld["correlation"]).size
    r = ldf.to_dict("records")[3]
    assert close(r["correlation"], np.asarray(ld["correlation"], dtype=float)[r["field"], r["value"]])
    assert r["node"] == np.asarray(ld["node"])[r["field"], r["value"]]
    check_html(res, figure=True)


def test_theorem_checks_frame():
    setup = teacher.make_setup(length=4, depth=2, widths=(3,))
    checks = [teacher.check_reformulation_forward(setup),
              teacher.check_batchnorm_projection(torch.randn(8, 2), torch.randn(8, 2))]
    df = reluscope.to_frame(checks)
    for row, c in zip(df.to_dict("records"), checks):
        d = c.to_dict()
        assert row["name"] == d["name"] and row["holds"] == d["holds"]
        assert close(row["residual"], d["residual"])
    assert "details_eps" in df.columns
    check_html(checks[0], figure=False)


# ---------------------------------------------------------------- train, sweep, claims


def test_train_frame(digits):
    res = T.train(nets.mlp([64, 16, 10]), digits, T.TrainConfig(epochs=1, batch_size=256))
    df, d = res.to_frame(), res.to_dict()
    assert "time_s" in df.columns and "seconds" not in df.columns
    for row, h in zip(df.to_dict("records"), d["history"]):
        assert row["epoch"] == h["epoch"] and close(row["test_acc"], h["test_acc"])
        assert close(row["time_s"], h["seconds"])
    check_html(res, figure=False)


def test_sweep_frame(tmp_path):
    from reluscope import sweep

    grid = tmp_path / "g.toml"
    grid.write_text("[sweep]\ntask = 'echo'\nseeds = [0, 1]\n[grid]\na = [1, 2]\n")
    res = sweep.run_sweep(sweep.read_grid(grid), tmp_path / "out", workers=0)
    df = res.to_frame()
    table = pd.read_csv(res.table)
    assert len(df) == len(table) == 4 and "time_s" in df.columns
    assert list(df["a"]) == list(table["a"]) and list(df["seed"]) == list(table["seed"])


def test_claims_and_generic_to_frame():
    claims = [Claim("a", "1.0", True), Claim("b", "2", None)]
    df = reluscope.to_frame(claims)
    assert list(df.columns) == ["claim", "measured", "holds"] and df["holds"].tolist()[0] is True
    check_html(claims[0], figure=False)
    assert reluscope.to_frame([{"x": np.float64(1.5)}])["x"].tolist() == [1.5]
    c = Comparison("d", 10, "shadow", "baseline", -0.1, 0.02, 3, "helps")
    assert c.to_frame().iloc[0].to_dict() == {k: v for k, v in c.to_dict().items()}
    with pytest.raises(reluscope.ReluscopeError, match="no table"):
        reluscope.to_frame(object())


def test_missing_pandas_is_one_line(monkeypatch, spec_result):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(DependencyError) as exc:
        spec_result.to_frame()
    assert str(exc.value) == "to_frame() needs pandas: pip install 'reluscope[frames]'"
    assert spec_result._repr_html_() is None  # the notebook falls back to the plain repr
