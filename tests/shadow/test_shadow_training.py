"""SHADOW training: augmented batches, no gradient into the sampler (autograd oracle),
determinism, the trainer's --shadow option, paired verdicts, the reproduction part."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
import torch.nn.functional as F

from reluscope import data, nets
from reluscope._io import write_json
from reluscope.report._registry import Section
from reluscope.shadow import ShadowAugment
from reluscope.shadow._experiment import ARMS, ShadowTrainConfig
from reluscope.shadow._paired import paired_comparisons, paired_difference
from reluscope.shadow.experiment_report import (
    experiment_config,
    reproduce_part,
    statement,
    training_section,
)
from reluscope.train import TrainConfig, train

TINY = dict(data="digits", arch="mlp:32", budgets=(64,), seeds=3, steps=4, lrs=(0.05,), batch_size=32)


@pytest.mark.parametrize("ratio,extra", [(0.5, 2), (1, 4), (2, 8)])
def test_cnn_with_dropout_batch_shapes_labels_proportions(ratio, extra):
    torch.manual_seed(0)
    model = nets.cifar_cnn(3, 8, 10, dropout=0.5)
    aug = ShadowAugment(model, layer=-2, rho=0.5, ratio=ratio, clamp=(0.0, 1.0), input_shape=(3, 8, 8),
                        seed=1)
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([3, 1, 4, 1])
    xa, ya = aug(x, y)
    assert xa.shape == (4 + extra, 3, 8, 8) and ya.dtype == torch.int64
    assert torch.equal(xa[:4], x) and torch.equal(ya[:4], y)  # the real batch first, untouched
    assert ya[4:].tolist() == [y[i % 4].item() for i in range(extra)]  # labels carried over
    syn = xa[4:]
    assert syn.min() >= 0 and syn.max() <= 1 and syn.abs().sum() > 0  # nonnegative, clamped, not empty


def test_no_gradient_flows_into_the_sampler():
    """Oracle: with mean cross-entropy over 2B samples, the parameter gradient of the augmented
    batch must equal (grad_real + grad_synthetic_as_constants) / 2, each from its own graph.
    A path through the sampler (x~ depends on W) would add a term and break the equality."""
    torch.manual_seed(0)
    model = nets.mlp([64, 32, 16, 10]).double()
    aug = ShadowAugment(model, layer=1, rho=0.5, ratio=1, seed=0, input_shape=(64,))
    x, y = torch.rand(8, 64, dtype=torch.float64), torch.arange(8) % 10
    params = list(model.parameters())
    with torch.enable_grad():
        xa, ya = aug(x, y)
        assert not xa.requires_grad and xa.grad_fn is None
        g_aug = torch.autograd.grad(F.cross_entropy(model(xa), ya), params)
    xs = xa[8:].clone()
    g_real = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    g_syn = torch.autograd.grad(F.cross_entropy(model(xs), y), params)
    for ga, gr, gs in zip(g_aug, g_real, g_syn):
        torch.testing.assert_close(ga, (gr + gs) / 2, rtol=1e-10, atol=1e-12)
    # And the synthetic inputs do depend on the weights (so the check above is not vacuous).
    with torch.no_grad():
        model[1].weight.mul_(1.5)
    aug2 = ShadowAugment(model, layer=1, rho=0.5, ratio=1, seed=0, input_shape=(64,))
    assert not torch.allclose(aug2(x, y)[0][8:], xs)


@pytest.fixture(scope="module")
def small_digits():
    ds = data.load("digits")
    return data.Dataset(data.Split(ds.train.x[:192], ds.train.y[:192]),
                        data.Split(ds.test.x[:64], ds.test.y[:64]), ds.spec)


def _train(ds, seed):
    torch.manual_seed(seed)
    model = nets.build("mlp:32", ds.spec.shape, ds.spec.classes, dropout=0.2)
    aug = ShadowAugment.from_spec(model, "layer=-2,rho=0.5,ratio=1", seed=seed, input_shape=ds.spec.shape)
    res = train(model, ds, TrainConfig(epochs=2, lr=0.05, batch_size=64, seed=seed), augment=aug)
    return res.history, torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_with_shadow_is_deterministic_for_a_seed(small_digits):
    h1, w1 = _train(small_digits, 5)
    h2, w2 = _train(small_digits, 5)
    _, w3 = _train(small_digits, 6)
    assert torch.equal(w1, w2) and [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    assert not torch.equal(w1, w3)


def test_trainer_cli_shadow_option_trains(tmp_path, capsys):
    from reluscope.cli import main

    losses = {}
    for name, extra in (("plain", []), ("shadow", ["--shadow", "layer=-2,rho=0.5,ratio=1"])):
        out = tmp_path / f"{name}.json"
        code = main(["train", "--data", "digits", "--arch", "mlp:32", "--epochs", "1", *extra,
                     "--out", str(tmp_path / f"{name}.pt"), "--json", str(out), "--quiet"])
        assert code == 0 and (tmp_path / f"{name}.pt").is_file()
        losses[name] = json.loads(out.read_text())["history"][0]["train_loss"]
    assert "test accuracy" in capsys.readouterr().out
    assert losses["plain"] != losses["shadow"]  # the option changed the training batches


def test_paired_difference_against_hand_computation():
    a, b = [0.10, 0.12, 0.11, 0.13], [0.15, 0.16, 0.14, 0.18]
    d = [x - y for x, y in zip(a, b)]
    mean, se, verdict = paired_difference(a, b)
    assert mean == pytest.approx(statistics.fmean(d))
    assert se == pytest.approx(statistics.stdev(d) / 2)
    assert verdict == "helps" and paired_difference(b, a)[2] == "hurts"
    # Effect between one and two standard errors: not enough at the default, enough at 1 SE.
    c = [0.15 + e for e in (-0.02, 0.0, 0.01, -0.03)]
    m, s, v = paired_difference(c, b)
    assert s < abs(m) < 2 * s and v == "no clear effect"
    assert paired_difference(c, b, se_multiple=1.0)[2] == "helps"
    assert paired_difference(a[:2], b[:2])[2].startswith("undecided")
    with pytest.raises(ValueError):
        paired_difference(a, b[:3])


def test_reproduce_part_json_has_every_arm_and_the_section_renders(tmp_path):
    cfg = ShadowTrainConfig(**TINY)
    rep, claims = reproduce_part(True, 0, "", "", configs={"digits": cfg})
    res = rep.results["digits"]
    assert {(a.arm, a.budget) for a in res.arms} == {(arm, 64) for arm in ARMS}
    assert all(len(a.test_errors) == 3 and len(a.curve_mean) == a.epochs for a in res.arms)
    assert len(rep.comparisons) == 2 and rep.comparisons == paired_comparisons(res, "digits")
    for c in rep.comparisons:  # the oracle: paired differences recomputed from the per-seed errors
        a, r = res.arm(c.arm, c.budget), res.arm(c.reference, c.budget)
        d = [p - q for p, q in zip(a.test_errors, r.test_errors)]
        assert c.mean_diff == pytest.approx(statistics.fmean(d))
    assert [c[0] for c in claims] == ["SHADOW lowers test error without dropout (digits)",
                                      "SHADOW lowers test error with dropout (digits)"]
    assert all(len(c) == 3 and c[2] in (True, False, None) for c in claims)
    write_json(tmp_path / "r.json", rep)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert {a["arm"] for a in saved["results"]["digits"]["arms"]} == set(ARMS)
    sec = training_section(rep, claims)
    assert isinstance(sec, Section) and sec.body.count("data:image/png") >= 1 and len(sec.claims) == 2
    assert sec.reading == statement(rep.comparisons) and "digits" in sec.reading


def test_configurations():
    for kind, path in (("digits", "digits"), ("mnist", "m"), ("cifar", "c")):
        quick, full = experiment_config(kind, path), experiment_config(kind, path, quick=False)
        assert full.seeds >= 5 and quick.seeds < full.seeds and full.steps > quick.steps
    cifar = experiment_config("cifar", "c")
    assert cifar.arch == "cifar_cnn" and cifar.optimizer == "adam"
    with pytest.raises(ValueError):
        experiment_config("imagenet", "x")


def test_the_best_setting_is_judged_on_test_and_its_claim_names_the_measure():
    cfg = ShadowTrainConfig(**{**TINY, "seeds": 3}, sweep_ratios=(1.0,))
    rep, claims = reproduce_part(True, 0, "", "", configs={"digits": cfg})
    res = rep.results["digits"]
    assert [p["label"] for p in res.sweeps] == ["baseline", "defaults", "ratio=1"]
    best = res.best
    chosen = min(res.sweeps[1:], key=lambda p: p["mean"])
    assert best["label"] == chosen["label"]  # chosen on validation ...
    d = [a - b for a, b in zip(best["test_errors"], best["baseline_test_errors"])]  # ... judged on test
    assert best["mean_diff"] == pytest.approx(statistics.fmean(d))
    assert best["se"] == pytest.approx(statistics.stdev(d) / 3 ** 0.5)
    text, measured, holds = claims[-1]
    assert text == "SHADOW's best setting (chosen on validation) lowers test error (digits)"
    assert best["label"] in measured and best["verdict"] in measured
    assert f"{best['mean_diff'] * 100:+.2f}" in measured
    assert holds == (best["verdict"] == "helps")
    # every SHADOW claim states the theory's conditions beside the verdict
    assert all("the theory's conditions" in c[1] for c in claims[:2])
    sec = training_section(rep, claims)
    assert len(sec.claims) == 3 and "best setting on validation" in sec.body and "ratio=1" in sec.body
