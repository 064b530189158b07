"""The author's FC protocol: teacher construction, the small-sample metric and its bias."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.teacher import FCConfig, FCNet, run_fc
from reluscope.teacher._author import (
    AUTHOR_CHOICES,
    author_best,
    author_correlation,
    author_layer,
    author_setup,
    expected_max_abs_null,
    heldout_best,
    make_author_teacher,
    normalise_rows,
)
from reluscope.teacher._fc import correlation_matrix


def test_author_layer_discrete_distinct_nonzero_rows():
    w, b = author_layer(25, 3, random.Random(0), torch.Generator().manual_seed(0))
    assert set(w.flatten().tolist()) <= set(AUTHOR_CHOICES)
    rows = {tuple(r.tolist()) for r in w}
    assert len(rows) == 25 and (0.0, 0.0, 0.0) not in rows
    assert b.min() >= -0.5 and b.max() <= 0.5 and b.std() > 0.1
    with pytest.raises(ValueError):
        author_layer(5**2, 2, random.Random(0), torch.Generator())  # only 24 nonzero rows exist


def test_normalisation_unit_rows_bias_scaled_with_its_row():
    w, b = author_layer(15, 10, random.Random(1), torch.Generator().manual_seed(1))
    wn, bn = normalise_rows(w, b)
    norm = w.norm(dim=1)
    torch.testing.assert_close(wn.norm(dim=1), norm / (norm + 1e-5))  # unit up to the author's 1e-5
    torch.testing.assert_close(bn, b / (norm + 1e-5))
    torch.testing.assert_close(wn * (norm + 1e-5)[:, None], w)  # a rescaled grid row


def test_author_teacher_and_setup():
    t = make_author_teacher(seed=2)
    for layer in [*t.hidden, t.out]:  # unit rows, biases within [-0.5, 0.5] / row norm
        np.testing.assert_allclose(layer.weight.norm(dim=1).numpy(), 1.0, atol=5e-5)  # 1e-5 / norm
        assert (layer.bias.abs() <= 2.0).all()  # raw rows have norm >= 0.25
    s = author_setup(widths=(4, 5), outputs=6, multi=3, n_train=50, n_eval=20, seed=3)
    assert [h.out_features for h in s.student.hidden] == [12, 15] and s.x_eval.shape == (20, 20)
    assert s.teacher.hidden[0].weight.dtype == torch.float64 and s.x_train.dtype == torch.float32
    assert abs(float(s.x_train.std()) - 10) < 1.5  # data std 10
    again = author_setup(widths=(4, 5), outputs=6, multi=3, n_train=50, n_eval=20, seed=3)
    assert torch.equal(again.x_train, s.x_train) and torch.equal(again.teacher.out.bias, s.teacher.out.bias)
    # every raw teacher row is a rescaled row of the discrete set: dividing by the smallest nonzero
    # |entry| and multiplying by 0.25 or 0.5 lands on the set
    for layer in s.teacher.hidden:
        for row in layer.weight:
            small = row.abs()[row.abs() > 1e-9].min()
            assert any(torch.allclose(row / small * k, (row / small * k * 4).round() / 4, atol=1e-6)
                       for k in (0.25, 0.5))


def test_author_correlation_is_pearson():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(100, 3, generator=g), torch.randn(100, 4, generator=g)
    torch.testing.assert_close(author_correlation(a, b), correlation_matrix(a, b), atol=1e-8, rtol=0)
    b[:, 0] = 2.0  # a dead node correlates with nothing
    assert torch.all(author_correlation(a, b)[:, 0] == 0)


def test_small_sample_bias_on_independent_teacher_and_student():
    """True correlation 0: teacher and student read disjoint input coordinates."""
    d, n_t, n_s = 20, 10, 250
    gen = torch.Generator().manual_seed(0)
    teacher, student = FCNet(d, (n_t,), 1).double(), FCNet(d, (n_s,), 1)
    with torch.no_grad():
        teacher.hidden[0].weight.copy_(torch.randn(n_t, d, generator=gen, dtype=torch.float64))
        teacher.hidden[0].weight[:, d // 2:] = 0
        teacher.hidden[0].bias.zero_()
        student.hidden[0].weight.copy_(torch.randn(n_s, d, generator=gen))
        student.hidden[0].weight[:, :d // 2] = 0
        student.hidden[0].bias.zero_()
    x_eval = 10 * torch.randn(1024, d, generator=gen)
    small = author_best(teacher, student, x_eval, gen)[0]  # first 3 batches: 192 samples
    held = heldout_best(teacher, student, 10 * torch.randn(10_000, d, generator=gen))[0]
    bound_small, bound_held = expected_max_abs_null(192, n_s), expected_max_abs_null(10_000, n_s)
    assert small.mean() > 0.5 * bound_small > 0.1  # clearly positive although the truth is 0
    assert np.all(np.abs(held) < 1.5 * bound_held) and bound_held < 0.05
    assert small.mean() - held.mean() > 0.1


def test_expected_max_abs_null_matches_simulation():
    gen = torch.Generator().manual_seed(1)
    n, nodes = 192, 250
    r = correlation_matrix(torch.randn(n, 40, generator=gen), torch.randn(n, nodes, generator=gen))
    sim = float(r.abs().max(1).values.mean())
    assert abs(sim - expected_max_abs_null(n, nodes)) < 0.25 * expected_max_abs_null(n, nodes)
    assert math.isclose(expected_max_abs_null(100, 1), math.sqrt(2 * math.log(2) / 100))


def test_run_fc_author_protocol_improves_and_reports_both():
    cfg = FCConfig(widths=(5, 6), multi=4, n_train=6000, n_eval=256, n_heldout=2000, epochs=3, lr=0.02)
    res = run_fc(cfg)
    assert cfg.protocol == "author"
    first, last = res.history[0], res.history[-1]
    assert last["eval_loss"] < first["eval_loss"]
    assert last["mean_best_heldout"][0] > first["mean_best_heldout"][0] + 0.05
    assert last["mean_best"][0] > first["mean_best"][0]
    assert len(res.best_heldout) == 2 and len(res.best_heldout[1]) == 6
    np.testing.assert_allclose(res.small_sample_bias, np.subtract(res.mean_best, res.mean_best_heldout))
    d, df = res.to_dict(), res.to_frame()
    assert d["config"]["protocol"] == "author" and len(d["mean_best_heldout"]) == 2
    np.testing.assert_allclose(df["mean_best_heldout"], res.mean_best_heldout)
    np.testing.assert_allclose(df["small_sample_bias"], res.small_sample_bias)


def test_centred_protocol_still_available_and_bad_protocol():
    res = run_fc(FCConfig(widths=(4,), multi=2, n_train=640, n_eval=64, n_heldout=500, epochs=1,
                          protocol="centred"))
    assert len(res.best[0]) == 4 and np.isfinite(res.mean_best_heldout[0])
    with pytest.raises(ConfigError, match="protocol"):
        run_fc(FCConfig(protocol="mine"))
