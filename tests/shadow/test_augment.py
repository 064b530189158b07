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
    default = ShadowAugment(_model(), input_shape=(1, 8, 8))
    # the theory's defaults: the first hidden layer, rho 0.75, a quarter of a sample per real one
    assert (default.layer, default.rho, default.ratio, default.scale) == (0, 0.75, 0.25, "data")
    assert ShadowAugment(_model(), layer="top", input_shape=(1, 8, 8)).layer == 1
    assert ShadowAugment(_model(), layer="output", input_shape=(1, 8, 8)).layer == 2
    for bad in ("rho=2", "depth=3", "rho", "rho=abc", "layer=9", "ratio=-1", "scale=pixels", "weight=-1",
                "warmup=-2", "layer=middle"):
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
    aug = ShadowAugment(_model(), layer="top", rho=1.0, ratio=1, input_shape=(1, 8, 8), refit_every=3)
    x = torch.rand(5, 1, 8, 8)
    first = aug.synthesize(x)
    fitted = list(aug._fitted)
    assert len(fitted) == 2 and all(a > 0 for a in fitted)  # one α per reversed layer
    torch.testing.assert_close(aug.synthesize(x), first)  # rho = 1: same α, same sample
    with pytest.raises(ConfigError, match="refit_every"):
        ShadowAugment(_model(), input_shape=(1, 8, 8), refit_every=0)


def test_samples_match_the_norm_of_their_real_image_and_the_batch_range():
    x = torch.rand(6, 1, 8, 8) * 3 + 1  # values in [1, 4]: a range the shadow model does not know
    y = torch.arange(6)
    free = ShadowAugment(_model(), rho=1.0, ratio=1, scale="model", clamp=None, input_shape=(1, 8, 8))
    scaled = ShadowAugment(_model(), rho=1.0, ratio=1, clamp=None, input_shape=(1, 8, 8))
    a, b = free.synthesize(x), scaled.synthesize(x)
    torch.testing.assert_close(b.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    # the same sample up to one factor per image (rho = 1: no noise)
    factor = b.flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1)
    torch.testing.assert_close(b, a * factor.view(-1, 1, 1, 1))
    clipped = ShadowAugment(_model(), rho=1.0, ratio=1, input_shape=(1, 8, 8)).synthesize(x)
    assert float(clipped.min()) >= float(x.min()) and float(clipped.max()) <= float(x.max())
    torch.testing.assert_close(clipped, b.clamp(float(x.min()), float(x.max())))
    assert ShadowAugment(_model(), ratio=1, clamp=(0.0, 0.5), input_shape=(1, 8, 8))(x, y)[0][6:].max() <= 0.5


def test_weight_gives_the_real_mean_loss_plus_w_times_the_synthetic_mean():
    import torch.nn.functional as F

    model = _model()
    aug = ShadowAugment(model, ratio=0.5, weight=0.3, input_shape=(1, 8, 8))
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 10
    xa, ya, w = aug(x, y)
    assert xa.shape[0] == ya.shape[0] == w.shape[0] == 12
    ce = F.cross_entropy(model(xa), ya, reduction="none")
    by_hand = ce[:8].mean() + 0.3 * ce[8:].mean()
    torch.testing.assert_close((w * ce).sum(), by_hand)


def test_warmup_holds_shadow_back_for_that_many_batches():
    aug = ShadowAugment(_model(), ratio=1, warmup=2, input_shape=(1, 8, 8))
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    sizes = [aug(x, y)[0].shape[0] for _ in range(4)]
    assert sizes == [4, 4, 8, 8]
    weighted = ShadowAugment(_model(), ratio=1, warmup=1, weight=1.0, input_shape=(1, 8, 8))
    first = weighted(x, y)
    assert len(first) == 3 and float(first[2].sum()) == pytest.approx(1.0)  # the real batch's mean


def test_conditions_count_the_nonzeros_of_every_level_by_hand():
    from reluscope.shadow import sample_chain

    torch.manual_seed(1)
    model = nets.mlp([64, 32, 16, 10])
    x = torch.rand(16, 64)
    for layer, depth in ((0, 1), ("top", 2), ("output", 3)):
        aug = ShadowAugment(model, layer=layer, rho=1.0, alpha="scaled", input_shape=(64,))
        aug.synthesize(x)
        aug.synthesize(x)  # rho = 1: the same levels twice, so the mean is one batch's
        cond = aug.conditions()
        net = aug.net
        h = net.forward(x, upto=aug.layer)
        if layer == "output":
            h = torch.softmax(h, dim=1)
        levels = sample_chain(net, h, layer=aug.layer, rho=1.0, alpha="scaled")
        by_hand = [float((lvl != 0).sum(1).double().mean()) for lvl in levels]
        assert cond["depth"] == depth and cond["nonzeros"] == pytest.approx(by_hand)
        assert cond["increasing"] == all(a < b for a, b in zip(by_hand, by_hand[1:]))
        assert cond["below_square"] == (by_hand[-1] < by_hand[0] ** 2)
        assert cond["narrower"] == (net.layers[aug.layer].out_shape[0] < 64)
        assert cond["holds"] == (cond["narrower"] and cond["increasing"] and cond["below_square"])
    # a code layer wider than the input (digits' 64 -> 256) is outside the theory, whatever k is
    wide = ShadowAugment(nets.mlp([64, 256, 10]), input_shape=(64,))
    assert wide.conditions() is None  # nothing drawn yet
    wide.synthesize(x)
    assert wide.conditions()["narrower"] is False and wide.conditions()["holds"] is False
