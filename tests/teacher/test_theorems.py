"""Each theorem check: confirmed where its conditions hold, rejected on a deliberately broken input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reluscope.errors import ConfigError
from reluscope.teacher import (
    check_batchnorm_projection,
    check_disentanglement,
    check_marginal_recursion,
    check_matrix_form,
    check_reformulation_backward,
    check_reformulation_forward,
    check_relu_vs_linear,
    construct_relu_solution,
    make_setup,
    make_teacher,
)
from reluscope.teacher._tree import build_tree


@pytest.fixture(scope="module")
def good():
    return make_setup("bijective", seed=0)


@pytest.fixture(scope="module")
def lossy():
    return make_setup("table", m=(2, 3, 3, 2), seed=0)


def test_theorem1_tower_property(good):
    ok = check_marginal_recursion(good)
    assert ok.holds and len(ok.per_level) == 2
    bad = check_marginal_recursion(good, pairs="non-children")
    assert not bad.holds and bad.residual > 1e-3
    with pytest.raises(ConfigError):
        check_marginal_recursion(good, pairs="siblings")


def test_theorem1_gradients_are_autograd(good):
    # oracle for g: finite differences of the summed loss w.r.t. one pre-activation shift
    s = good.student
    pre, post = s.trace(good.x)
    for p in pre:
        p.retain_grad()
    F.cross_entropy(post[-1].flatten(1), good.zs[-1][:, 0], reduction="sum").backward()
    g = pre[0].grad[3, 1, 0, 2].item()
    s.zero_grad()
    h = 1e-6
    with torch.no_grad():
        def loss(shift):
            layer = s.levels[0]
            old = layer.bias[2, 1].item()
            out = s.levels[0](good.x[3:4])
            out[0, 1, 0, 2] += shift
            h1 = torch.relu(out)
            top = s.levels[2](torch.relu(s.levels[1](h1)))
            layer.bias[2, 1] = old
            return F.cross_entropy(top.flatten(1), good.zs[-1][3:4, 0], reduction="sum").item()
        fd = (loss(h) - loss(-h)) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_theorem2_forward_exact_only_with_point_mass(good, lossy):
    assert check_reformulation_forward(good).holds
    bad = check_reformulation_forward(lossy)
    assert not bad.holds and bad.residual > 1e-3


def test_theorem2_backward_exact_only_with_point_mass(good, lossy):
    assert check_reformulation_backward(good).holds
    bad = check_reformulation_backward(lossy)
    assert not bad.holds and bad.residual > 1e-3


def test_matrix_form_from_teacher_P_only(good, lossy):
    ok = check_matrix_form(good)
    assert ok.holds and len(ok.per_level) == 3
    assert not check_matrix_form(lossy).holds


def test_bn_projection_matches_autograd_and_textbook_formula():
    g0 = torch.Generator().manual_seed(0)
    f = torch.randn(32, 3, generator=g0, dtype=torch.float64)
    g = torch.randn(32, 3, generator=g0, dtype=torch.float64)
    ok = check_batchnorm_projection(f, g, c1=2.0)
    assert ok.holds and ok.details["orthogonal_to_1"] < 1e-12 and ok.details["orthogonal_to_f"] < 1e-12
    # second oracle: the original paper's backward formulas (Ioffe & Szegedy), eps = 0
    mu, var = f.mean(0), f.var(0, unbiased=False)
    dxhat = 2.0 * g
    dvar = (dxhat * (f - mu) * -0.5 * var ** -1.5).sum(0)
    dmu = (-dxhat / var.sqrt()).sum(0) + dvar * (-2 * (f - mu)).mean(0)
    dx = dxhat / var.sqrt() + dvar * 2 * (f - mu) / 32 + dmu / 32
    fc = f - mu
    ft = fc / var.sqrt()
    proj = (g - g.mean(0)) - ((g - g.mean(0)) * ft).mean(0) * ft
    torch.testing.assert_close(dx, 2.0 / var.sqrt() * proj)


def test_bn_projection_rejects_broken_batch_norms():
    g0 = torch.Generator().manual_seed(1)
    f = torch.randn(16, 2, generator=g0, dtype=torch.float64)
    g = torch.randn(16, 2, generator=g0, dtype=torch.float64)
    assert not check_batchnorm_projection(0.01 * f, g, eps=1e-3).holds

    def unbiased(v):  # std with N-1: no longer the projection's scale
        return 1.5 * (v - v.mean(0)) / v.std(0, unbiased=True) + 0.3

    bad = check_batchnorm_projection(f, g, bn=unbiased)
    assert not bad.holds and bad.case == "custom bn"
    with pytest.raises(ConfigError):
        check_batchnorm_projection(f[:1], g[:1])


def test_theorem6_construction_and_closed_form_linear_bound():
    ok = check_relu_vs_linear(steps=150)
    d = ok.details
    assert ok.holds and d["relu_constructed_loss"] == 0.0
    assert d["linear_min_loss"] > 0.1
    # the least-squares optimum bounds every linear student from below
    assert d["linear_trained_loss"] >= d["linear_min_loss"] - 1e-6
    bad = check_relu_vs_linear(widths=(1,), steps=150)
    assert not bad.holds
    with pytest.raises(ConfigError):
        construct_relu_solution(make_teacher(build_tree(4, 2, 2), (2, 3, 2)))


def test_construction_outputs_the_label_one_hot():
    te = make_teacher(build_tree(6, 3, 2, 1), 2, "bijective")  # overlapping fields
    s = construct_relu_solution(te)
    leaves = te.enumerate_leaves()
    with torch.no_grad():
        out = s(te.inputs(leaves))
    torch.testing.assert_close(out, F.one_hot(te.evaluate(leaves)[-1][:, 0], te.classes).double())


def test_theorem8_disentanglement():
    assert check_disentanglement(length=4, depth=2, m=(2, 3, 2), widths=(4,)).holds
    assert not check_disentanglement(length=4, depth=2, m=(2, 3, 2), widths=(4,), separate=False).holds
    assert not check_disentanglement(length=4, depth=2, m=(2, 3, 2), widths=(4,), factorised=False).holds
