"""The training loop: learns, is deterministic for a seed, applies augmentation."""

from __future__ import annotations

import pytest
import torch

from reluscope import data, nets
from reluscope.errors import ConfigError
from reluscope.train import TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def _run(digits, seed=0, **kw):
    torch.manual_seed(seed)
    model = nets.build("mlp:32", digits.spec.shape, 10)
    return train(model, digits, TrainConfig(epochs=3, seed=seed, **kw))


def test_training_learns_and_is_deterministic(digits):
    a, b = _run(digits), _run(digits)
    assert a.final["test_acc"] > 0.85
    assert a.history == [dict(r, seconds=a.history[i]["seconds"]) for i, r in enumerate(b.history)]
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    loss, acc = evaluate(a.model, digits.test.x, digits.test.y)
    assert acc == pytest.approx(a.final["test_acc"]) and loss == pytest.approx(a.final["test_loss"])


def test_evaluate_at_skips_test_passes_without_changing_training(digits):
    every = _run(digits)
    sparse = train(_fresh(digits), digits, TrainConfig(epochs=3, seed=0), evaluate_at={1})
    assert ["test_acc" in r for r in sparse.history] == [True, False, True]  # the last always
    for a, b in zip(every.history, sparse.history):  # same trajectory, same numbers where evaluated
        assert {k: v for k, v in a.items() if k in b and k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}
    for p, q in zip(every.model.parameters(), sparse.model.parameters()):
        assert torch.equal(p, q)


def _fresh(digits, seed=0):
    torch.manual_seed(seed)
    return nets.build("mlp:32", digits.spec.shape, 10)


def test_adam_and_weight_decay(digits):
    res = _run(digits, optimizer="adam", lr=1e-2, weight_decay=1e-4)
    assert res.final["test_acc"] > 0.85


def test_augment_hook_sees_every_batch(digits):
    seen = []

    def augment(x, y):
        seen.append(len(y))
        return torch.cat([x, x]), torch.cat([y, y])

    torch.manual_seed(0)
    model = nets.build("mlp:16", digits.spec.shape, 10)
    results = []
    train(model, digits, TrainConfig(epochs=2, batch_size=100), augment=augment, on_epoch=results.append)
    assert sum(seen) == 2 * len(digits.train)
    assert len(results) == 2 and len(results[-1].history) == 2


def test_divergence_and_bad_config(digits):
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    torch.manual_seed(0)
    model = nets.build("mlp:16", digits.spec.shape, 10)
    with pytest.raises(ConfigError, match="diverged"):
        train(model, digits, TrainConfig(epochs=1, lr=1e12))
