"""Fully connected teacher–student: teacher construction, correlations, the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.teacher import FCConfig, best_match, correlation_matrix, make_fc_teacher, run_fc
from reluscope.teacher._fc import WEIGHT_GRID, fc_student


def test_teacher_grid_weights_unit_rows_half_active():
    t = make_fc_teacher(seed=3)
    x = 10 * torch.randn(20_000, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    _, hs = t.hiddens(x)
    for layer, h in zip(t.hidden, hs):
        w = layer.weight
        torch.testing.assert_close(w.norm(dim=1), torch.ones(w.shape[0], dtype=torch.float64))
        assert len({tuple(r.tolist()) for r in w}) == w.shape[0]  # distinct rows
        for row in w:  # a grid row rescaled: some largest entry k/4 puts every entry on the grid
            ok = False
            for k in range(1, 5):
                r = row / row.abs().max() * k / 4
                ok |= bool(torch.allclose(r * 4, (r * 4).round(), atol=1e-9))
            assert ok
        frac = (h > 0).double().mean(0)
        assert frac.min() > 0.4 and frac.max() < 0.6
    grid = set(WEIGHT_GRID.tolist())
    assert len(grid) == 9 and -1.0 in grid and 0.75 in grid


def test_correlation_matrix_matches_numpy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, generator=g), torch.randn(50, 4, generator=g)
    b[:, 3] = 1.0  # constant column: correlation 0 by convention
    c = correlation_matrix(a, b).numpy()
    ref = np.corrcoef(a.numpy().T, b[:, :3].numpy().T)[:3, 3:]
    np.testing.assert_allclose(c[:, :3], ref, atol=1e-6)
    assert np.all(c[:, 3] == 0)


def test_teacher_matches_itself_exactly():
    cfg = FCConfig(widths=(4, 5), multi=1)
    t = make_fc_teacher(cfg.d, cfg.widths, cfg.outputs, seed=1)
    s = fc_student(cfg)
    s.load_state_dict({k: v.float() for k, v in t.state_dict().items()})
    best = best_match(t, s, 10 * torch.randn(300, 20))
    for b in best:
        np.testing.assert_allclose(b, 1.0, atol=1e-5)


def test_run_fc_small_learns_and_tracks():
    res = run_fc(FCConfig(widths=(5, 6), multi=4, n_train=6000, n_eval=256, epochs=3, lr=0.02))
    assert [h["epoch"] for h in res.history] == [0, 1, 2, 3]
    assert res.history[-1]["eval_loss"] < res.history[0]["eval_loss"]
    assert res.mean_best[0] > res.history[0]["mean_best"][0]
    d = res.to_dict()
    assert len(d["best"]) == 2 and len(d["matched_0.9"]) == 2


def test_run_fc_bad_config():
    with pytest.raises(ConfigError):
        run_fc(FCConfig(lr=0))
    with pytest.raises(ConfigError, match="diverged"):
        run_fc(FCConfig(widths=(3,), multi=2, n_train=640, n_eval=64, epochs=1, lr=50.0))


@pytest.mark.slow
def test_reproduce_author_fc_setting():
    """Full budget of issue 8: 10 epochs, 100k samples, seed 0, judged against the author's own runs
    (`AUTHOR_RUNS_10_EPOCHS`; measured here: 0.9937 / 0.8020 / 0.6971 / 0.7809, layer 4 decides by +0.004)."""
    from reluscope.teacher.report import reproduction_verdict

    res = run_fc(FCConfig())
    print("mean best-match correlation per layer:", [round(v, 4) for v in res.mean_best])
    assert res.mean_best[0] > 0.95
    assert all(v > 0.6 for v in res.mean_best)
    verdict = reproduction_verdict(res.mean_best)
    assert verdict.holds, verdict.text
