"""SHADOW augmentation: batch shapes, labels, proportions, no gradient, determinism, trainer."""

from __future__ import annotations

import pytest
import torch

from reluscope import data, nets
from reluscope.errors import ConfigError
from reluscope.shadow import ShadowAugment
from reluscope.train import TrainConfig, train


def _model():
    torch.manual_seed(0)
    return nets.mlp([64, 32, 16, 10])


@pytest.mark.parametrize("ratio,extra", [(1, 6), (0.5, 3), (2, 12), (0, 0)])
def test_shapes_labels_and_proportions(ratio, extra):
    aug = ShadowAugment(_model(), rho=0.5, ratio=ratio, input_shape=(1, 8, 8))
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 4, 5])
    xa, ya = aug(x, y)
    assert xa.shape == (6 + extra, 1, 8, 8) and ya.shape == (6 + extra,)
    assert torch.equal(xa[:6], x) and torch.equal(ya[:6], y)
    assert ya[6:].tolist() == [i % 6 for i in range(extra)]
    if extra:
        assert not torch.equal(xa[6:12 if extra >= 6 else 6 + extra], x[: min(6, extra)])


def test_no_gradient_into_the_sampler():
    model = _model()
    aug = ShadowAugment(model, layer=1, rho=0.5, ratio=1, input_shape=(1, 8, 8))
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    xa, _ = aug(x, torch.zeros(4, dtype=torch.int64))
    assert not aug.synthesize(x).requires_grad  # a leaf, detached from parameters and inputs
    model(xa[4:]).sum().backward()
    assert x.grad is None or not x.grad.any()  # nothing reaches the real inputs via synthetic ones
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(xa[4:].detach()).sum().backward()  # the same loss on detached inputs: same gradients
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters()))


def test_from_spec_and_errors():
    aug = ShadowAugment.from_spec(_model(), "layer=-2, rho=0.3, ratio=2", input_shape=(1, 8, 8))
    assert (aug.layer, aug.rho, aug.ratio) == (1, 0.3, 2.0)
    assert ShadowAugment(_model(), input_shape=(1, 8, 8)).layer == 1  # top ReLU layer by default
    for bad in ("rho=2", "depth=3", "rho", "rho=abc", "layer=9", "ratio=-1"):
        with pytest.raises(ConfigError):
            ShadowAugment.from_spec(_model(), bad, input_shape=(1, 8, 8))


@pytest.fixture(scope="module")
def small_digits():
    ds = data.load("digits")
    return data.Dataset(data.Split(ds.train.x[:256], ds.train.y[:256]),
                        data.Split(ds.test.x[:128], ds.test.y[:128]), ds.spec)


def test_training_with_shadow_is_deterministic_and_works_in_the_trainer(small_digits):
    ds = small_digits
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=64, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nets.build("mlp:32", ds.spec.shape, ds.spec.classes)
        aug = ShadowAugment.from_spec(model, "rho=0.5,ratio=1", seed=3, input_shape=ds.spec.shape)
        res = train(model, ds, cfg, augment=aug)
        runs.append((res.history[-1]["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_trainer_cli_option(tmp_path, capsys):
    from reluscope.cli import main

    code = main(["train", "--data", "digits", "--arch", "mlp:32", "--epochs", "1", "--shadow",
                 "layer=-2,rho=0.5,ratio=1", "--out", str(tmp_path / "m.pt"), "--quiet"])
    assert code == 0 and "test accuracy" in capsys.readouterr().out
    # a conv net: the sampler needs the input shape, which the CLI knows from --data
    code = main(["train", "--data", "digits", "--arch", "cifar_cnn", "--epochs", "1", "--shadow", "rho=0.5",
                 "--out", str(tmp_path / "c.pt"), "--quiet"])
    assert code == 0 and "test accuracy" in capsys.readouterr().out
    code = main(["train", "--data", "digits", "--arch", "mlp:32", "--epochs", "1", "--shadow", "rho=7",
                 "--out", str(tmp_path / "m.pt"), "--quiet"])
    assert code == 2


def test_fitted_alpha_is_reused_between_refits():
    aug = ShadowAugment(_model(), rho=1.0, ratio=1, input_shape=(1, 8, 8), refit_every=3)
    x = torch.rand(5, 1, 8, 8)
    first = aug.synthesize(x)
    fitted = list(aug._fitted)
    assert len(fitted) == 2 and all(a > 0 for a in fitted)  # one α per reversed layer
    torch.testing.assert_close(aug.synthesize(x), first)  # rho = 1: same α, same sample
    with pytest.raises(ConfigError, match="refit_every"):
        ShadowAugment(_model(), input_shape=(1, 8, 8), refit_every=0)
