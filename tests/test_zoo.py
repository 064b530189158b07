"""The model cache: the second request reads the same weights back."""

from __future__ import annotations

import torch

from reluscope import zoo
from reluscope.train import TrainConfig


def test_trained_is_cached_and_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path))
    cfg = TrainConfig(epochs=1, seed=3)
    first = zoo.trained("mlp:16", "digits", cfg, max_train=300)
    second = zoo.trained("mlp:16", "digits", cfg, max_train=300)
    assert not first.cached and second.cached and first.path == second.path
    for p, q in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(p, q)
    for p, q in zip(first.init_model.state_dict().values(), second.init_model.state_dict().values()):
        assert torch.equal(p, q)
    assert second.history == first.history and len(second.data.train) == 300
    other = zoo.trained("mlp:16", "digits", TrainConfig(epochs=1, seed=4), max_train=300)
    assert other.path != first.path
    x = second.data.test.x[:5]
    torch.testing.assert_close(second.net(x), second.model(x))
