"""Field tree and locally connected teacher: structure, lookups and P(z_β|z_α) against brute force."""

from __future__ import annotations

import pytest
import torch

from reluscope.errors import ConfigError
from reluscope.nets import LocallyConnected2d
from reluscope.teacher import FieldLinear, build_tree, make_teacher


def test_tree_children_leaves_parents_with_overlap():
    t = build_tree(7, depth=3, kernel=3, stride=2)
    assert t.grids == ((1, 7), (1, 3), (1, 1), (1, 1))
    assert t.children(1, 1) == [2, 3, 4]
    assert t.parents(0, 2) == [0, 1]  # shared by two overlapping fields
    assert t.leaves(2, 0) == list(range(7))
    assert t.children(3, 0) == [0]


def test_2d_children_follow_unfold_order():
    # oracle: LocallyConnected2d (built on F.unfold) with the same weights
    t = build_tree((6, 6), depth=3, kernel=2)
    torch.manual_seed(0)
    ref = LocallyConnected2d(3, 5, (6, 6), 2, 2)
    mine = FieldLinear(3, 5, t._children[1], t.grids[1])
    with torch.no_grad():
        mine.weight.copy_(ref.weight.reshape(9, 5, 12))
        mine.bias.copy_(ref.bias.flatten(1).T)
    x = torch.randn(4, 3, 6, 6)
    torch.testing.assert_close(mine(x), ref(x))


def test_tree_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="does not fit"):
        build_tree(4, depth=4, kernel=2)
    with pytest.raises(ConfigError, match="depth"):
        build_tree(4, depth=0)


def test_evaluate_is_the_lookup_table():
    t = build_tree(4, depth=2, kernel=2)
    te = make_teacher(t, (3, 4, 2), "table", seed=1)
    leaves = torch.tensor([[2, 0, 1, 1]])
    zs = te.evaluate(leaves)
    z1 = [int(te.tables[1][0, 2 * 3 + 0]), int(te.tables[1][1, 1 * 3 + 1])]
    assert zs[1].tolist() == [z1]
    assert zs[2].item() == int(te.tables[2][0, z1[0] * 4 + z1[1]])


def test_exact_transition_matches_brute_force_and_sampling():
    t = build_tree(6, depth=3, kernel=2, stride=1)  # overlapping fields
    te = make_teacher(t, (2, 3, 3, 2), "table", seed=2)
    tr = te.transition(2, 1, 2)
    assert tr.exact
    # brute force: all 2^6 inputs
    zs = te.evaluate(te.enumerate_leaves())
    P = torch.zeros(3, 3, dtype=torch.float64)
    for a, b in zip(zs[2][:, 1].tolist(), zs[1][:, 2].tolist()):
        P[a, b] += 1
    P = P / P.sum(1, keepdim=True).clamp_min(1)
    torch.testing.assert_close(tr.P, P)
    torch.testing.assert_close(tr.P.sum(1)[tr.prior > 0], torch.ones(int((tr.prior > 0).sum()),
                                                                     dtype=torch.float64))


def test_sampled_transition_is_close_to_exact():
    import reluscope.teacher._teacher as mod

    t = build_tree(8, depth=3, kernel=2)
    te = make_teacher(t, (2, 3, 3, 2), "table", seed=3)
    exact = te.transition(2, 0, 1)
    old = mod.MAX_ENUMERATE
    mod.MAX_ENUMERATE = 2  # force sampling
    try:
        est = te.transition(2, 0, 1, samples=40_000)
    finally:
        mod.MAX_ENUMERATE = old
    assert exact.exact and not est.exact
    assert (exact.P - est.P).abs().max() < 0.03


def test_bijective_is_all_vertex_and_lossy_is_not():
    t = build_tree(4, depth=2, kernel=2)
    bij = make_teacher(t, 2, "bijective")
    assert bij.m == (2, 4, 16)
    assert bij.transition(2, 0, 1).is_all_vertex()
    assert not make_teacher(t, (2, 3, 2), "table").transition(2, 0, 1).is_all_vertex()


def test_relu_teacher_values_are_roughly_balanced():
    t = build_tree((4, 4), depth=3, kernel=2)
    te = make_teacher(t, (2, 4, 4, 4), "relu", seed=0)
    _, zs = te.sample(4000, torch.Generator().manual_seed(0))
    counts = torch.bincount(zs[1].flatten(), minlength=4).double()
    assert counts.min() > 0.1 * counts.sum()


def test_teacher_errors():
    t = build_tree(4, depth=2, kernel=2)
    with pytest.raises(ConfigError, match="kind"):
        make_teacher(t, (2, 3, 2), "nope")
    with pytest.raises(ConfigError, match="m needs"):
        make_teacher(t, (2, 3))
    with pytest.raises(ConfigError, match="cannot take"):
        make_teacher(t, (2, 5, 2))
    with pytest.raises(ConfigError, match="not a child"):
        make_teacher(t, (2, 3, 2)).transition(2, 0, 3)
    with pytest.raises(ConfigError, match="enumeration limit"):
        make_teacher(t, (2, 3, 2)).enumerate_leaves(limit=4)
