"""The sparse conv path (`reluscope.preimage._sparse`) against the dense path and the LP oracle.

Oracles: the dense unroll (`Layer.dense_matrix`) for the sparse matrix, entry for entry;
the dense `classify` for the kinds (every kind occurs), and the coordinate-LP oracle of
`_oracle.py` on the random layers of `_cases.py`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from scipy import sparse
from torch import nn

from reluscope.nets import as_graph
from reluscope.preimage import Tolerances, classify, classify_layer
from reluscope.preimage._net import layer_inputs, layer_system
from reluscope.preimage._sparse import (
    SparseLayer,
    classify_batch_sparse,
    classify_sparse,
    conv_matrix,
    full_column_rank,
    sparse_layer_system,
)

from ._cases import GENERATORS
from ._oracle import oracle_kind
from .test_classify import _check_certificate

CONVS = {
    "stride2-pad1": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 7, 6)),
    "dilation2": (lambda: nn.Conv2d(2, 3, 3, dilation=2, padding=2), (2, 7, 7)),
    "groups2-nobias": (lambda: nn.Conv2d(4, 6, (2, 3), groups=2, bias=False, stride=(1, 2)), (4, 5, 6)),
    "depthwise": (lambda: nn.Conv2d(3, 3, 3, groups=3, padding=(0, 1)), (3, 5, 5)),
    "same-even-kernel": (lambda: nn.Conv2d(2, 3, 4, padding="same", dilation=(1, 2)), (2, 6, 7)),
    "valid": (lambda: nn.Conv2d(2, 2, 3, padding="valid"), (2, 5, 4)),
    "conv-bn": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)), (2, 4, 4)),
}


def _net(make, shape, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(make(), nn.ReLU()).eval()
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bn:
        m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    return model, as_graph(model, shape)


@pytest.mark.parametrize("name", sorted(CONVS))
def test_sparse_matrix_equals_dense_unroll(name):
    model, net = _net(*CONVS[name])
    W, b = sparse_layer_system(net, 0)
    Wd, bd = layer_system(net, 0)
    assert sparse.issparse(W) and W.shape == Wd.shape
    assert np.array_equal(W.toarray(), Wd) and np.array_equal(b, bd)


def test_conv_matrix_small_example():
    w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    W = conv_matrix(w, (1, 2, 2), (1, 1, 1), 1, 0, 1, 1)
    assert W.toarray().tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_conv1d_matrix_equals_its_unroll():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2).double()
    basis = torch.eye(4 * 9, dtype=torch.float64).reshape(-1, 4, 9)
    with torch.no_grad():
        dense = conv._conv_forward(basis, conv.weight, None).reshape(len(basis), -1).T.numpy()
    W = conv_matrix(conv.weight, (4, 9), (6, dense.shape[0] // 6), conv.stride, conv.padding,
                    conv.dilation, conv.groups)
    assert np.array_equal(W.toarray(), dense)


def test_non_conv_layers_keep_the_dense_path():
    net = as_graph(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), (1, 2, 2))
    assert sparse_layer_system(net, 0) is None


# (channels, bias): one input channel over 5x5; few channels leave the pre-image unbounded,
# negative biases make it compact, many channels make it a single point.
KIND_CONVS = [(1, 0.0), (2, 0.0), (3, -0.2), (8, -0.5), (8, 0.0), (2, -0.1)]


def test_sparse_path_kinds_equal_dense_path_on_convs():
    seen = Counter()
    for channels, bias in KIND_CONVS:
        torch.manual_seed(channels)
        model = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU())
        with torch.no_grad():
            model[0].bias.fill_(bias)
        x = torch.randn(12, 1, 5, 5)
        fast = classify_layer(model, 0, x, workers=1)
        slow = classify_layer(model, 0, x, workers=1, dense=True)
        assert fast.batch.kinds == slow.batch.kinds, (channels, bias)
        assert [r.n_tight for r in fast.batch.results] == [r.n_tight for r in slow.batch.results]
        assert [r.null_dim for r in fast.batch.results] == [r.null_dim for r in slow.batch.results]
        W, b = layer_system(as_graph(model, (1, 5, 5)), 0)
        for xi, res in zip(x.reshape(len(x), -1).double().numpy(), fast.batch.results):
            _check_certificate(W, b, xi, res)
        seen.update(fast.batch.kinds)
    assert {"singleton", "compact", "unbounded"} <= set(seen)


def test_cifar_like_first_conv_is_certified_singleton_without_dense():
    # 3 -> 16 channels over 8x8: W_P has many more rows than columns, full rank.
    model, net = _net(lambda: nn.Conv2d(3, 16, 3, padding=1), (3, 8, 8))
    W, b = sparse_layer_system(net, 0)
    layer = SparseLayer(W, b)
    X = layer_inputs(net, 0, torch.rand(3, 3, 8, 8))
    for x in X:
        res = classify_sparse(layer, x)
        assert res.kind == classify(W.toarray(), b, x).kind == "singleton"
    assert layer._dense is None  # decided without the dense matrix


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_sparse_classify_agrees_with_dense_and_oracle(kind):
    rng = np.random.default_rng(7 + sum(map(ord, kind)))
    for i in range(40):
        W, b, x = GENERATORS[kind](rng)
        res = classify_sparse(SparseLayer(sparse.csr_array(W), b), x)
        dense = classify(W, b, x)
        assert res.kind == dense.kind, (kind, W, b, x, res, dense)
        assert (res.n_positive, res.n_tight, res.rank, res.null_dim) == \
            (dense.n_positive, dense.n_tight, dense.rank, dense.null_dim)
        if i < 10 and res.kind != "degenerate":
            assert res.kind == oracle_kind(W, b, x)
        _check_certificate(W, b, x, res)


def test_full_column_rank_is_only_claimed_when_the_dense_rank_test_agrees():
    rng = np.random.default_rng(3)
    tol = Tolerances()
    claims = []
    for gap in (1.0, 1e-3, 1e-5, 1.5e-6, 1e-7, 1e-12, 0.0):
        U, _ = np.linalg.qr(rng.standard_normal((30, 6)))
        V, _ = np.linalg.qr(rng.standard_normal((6, 6)))
        A = (U * np.r_[np.ones(5), gap]) @ V.T
        s = np.linalg.svd(A, compute_uv=False)
        claimed = full_column_rank(sparse.csr_array(A), np.arange(6), 5, tol, 1.0)
        threshold = tol.band * tol.rank * max(1.0, s[0])
        if claimed:
            assert s[-1] > threshold
        if s[-1] > 1e3 * threshold:
            assert claimed  # clearly full rank is proved
        claims.append(claimed)
    assert claims == [True, True, True, False, False, False, False]


def test_sign_near_a_threshold_goes_to_the_dense_path():
    W = np.array([[1.0, 1.0], [1.0, -1.0], [0.5, 2.0]])
    x = np.array([1.0, 0.0])
    b = np.array([-1.0 + 1e-9 * 2.0, 0.0, 0.0])  # |z_0| is at the zero threshold
    layer = SparseLayer(sparse.csr_array(W), b)
    res = classify_sparse(layer, x)
    assert layer._dense is not None
    assert res.kind == classify(W, b, x).kind


def test_batch_matches_per_sample_and_checks_shapes():
    model, net = _net(lambda: nn.Conv2d(1, 3, 3, padding=1), (1, 4, 4))
    W, b = sparse_layer_system(net, 0)
    X = np.random.default_rng(0).standard_normal((5, 16))
    batch = classify_batch_sparse(W, b, X, workers=1)
    assert batch.kinds == [classify(W.toarray(), b, x).kind for x in X]
    with pytest.raises(Exception, match="columns"):
        classify_batch_sparse(W, b, np.zeros((2, 15)), workers=1)


def test_doctests():
    import doctest

    from reluscope.preimage import _sparse

    result = doctest.testmod(_sparse, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
