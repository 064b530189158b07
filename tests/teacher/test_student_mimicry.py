"""Student wiring and mimicry statistics against brute-force computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.teacher import LCConfig, LCStudent, build_tree, level_mimicry, run_lc, train_student


def test_child_weight_reproduces_the_layer():
    t = build_tree(7, depth=3, kernel=3, stride=2)
    s = LCStudent(t, 2, (4, 3), 5, seed=0).double()
    x = torch.randn(6, 2, 1, 7, dtype=torch.float64)
    pre, post = s.trace(x)
    for lev in (1, 2):
        below = x.flatten(2) if lev == 1 else post[lev - 2].flatten(2)
        for a in range(t.n_fields(lev)):
            manual = s.field_bias(lev, a) + sum(below[:, :, b] @ s.child_weight(lev, a, slot)
                                                for slot, b in enumerate(t.children(lev, a)))
            torch.testing.assert_close(pre[lev - 1].flatten(2)[:, :, a], manual)


def test_student_errors_and_training_reduces_loss():
    t = build_tree(4, depth=2, kernel=2)
    with pytest.raises(ConfigError, match="widths"):
        LCStudent(t, 2, (3, 3), 2)
    s = LCStudent(t, 2, (8,), 2, seed=0)
    x = torch.randn(256, 2, 1, 4)
    y = (x[:, 0, 0, 0] > x[:, 1, 0, 3]).long()
    losses = train_student(s, x, y, epochs=15, lr=0.01, optimizer="adam")
    assert losses[-1] < 0.7 * losses[0]
    with pytest.raises(ConfigError, match="optimizer"):
        train_student(s, x, y, epochs=1, optimizer="rmsprop")


def test_level_mimicry_matches_numpy():
    g = torch.Generator().manual_seed(0)
    z = torch.randint(0, 3, (500, 2), generator=g)
    act = torch.relu(torch.randn(500, 4, 2, generator=g, dtype=torch.float64))
    act[:, 1, 0] += 2.0 * (z[:, 0] == 2)  # node 1 of field 0 prefers a = 2
    lm = level_mimicry(act, z, 3)
    for f in range(2):
        for a in range(3):
            ind = (z[:, f] == a).numpy().astype(float)
            corr = [np.corrcoef(act[:, j, f].numpy(), ind)[0, 1] for j in range(4)]
            j = int(np.argmax(corr))
            assert lm.correlation[f, a] == pytest.approx(corr[j], abs=1e-12)
            on, off = act[z[:, f] == a, j, f].mean(), act[z[:, f] != a, j, f].mean()
            assert lm.selectivity[f, a] == pytest.approx(float((on - off) / (on + off)), abs=1e-12)
    assert lm.node[0, 2] == 1 and lm.correlation[0, 2] > 0.7


def test_perfect_indicator_is_matched():
    z = torch.randint(0, 4, (300, 1), generator=torch.Generator().manual_seed(1))
    act = torch.nn.functional.one_hot(z[:, 0], 4).double()[:, :, None]
    lm = level_mimicry(act, z, 4)
    assert lm.matched(0.95) == 1.0 and np.allclose(lm.selectivity, 1.0)


def test_run_lc_tracks_every_epoch():
    res = run_lc(LCConfig(n_train=2000, n_eval=500, epochs=2))
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert len(res.levels) == 2 and all(np.isfinite(lv.mean_correlation) for lv in res.levels)
    d = res.to_dict()
    assert d["levels"][0]["correlation"] and "matched_0.9" in d["history"][-1]["levels"][0]
