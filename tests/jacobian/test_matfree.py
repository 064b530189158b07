"""Matrix-free spectra (`method="lanczos"`) against the dense Jacobian: autograd + torch's SVD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.jacobian import spectra
from reluscope.jacobian._matfree import JacobianOperator, matfree_spectrum

from ..graph_models import tiny_resnet

RTOL = 1e-6


def _conv_net() -> nn.Module:
    """A small random conv net on CIFAR-size inputs (3×32×32)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def _dense_sv(f, x1: torch.Tensor) -> np.ndarray:
    J = torch.func.jacrev(f)(x1)  # reverse-mode autograd, every row at once
    return torch.linalg.svdvals(J.detach().reshape(J.shape[0], -1)).numpy()


def _chain_f(net, layer: int, stage: str):
    def f(v):
        h = v.reshape(1, *net.input_shape)
        for lay in net.layers[:layer]:
            h = lay(h)
        z = net.layers[layer].affine(h)
        return (z if stage == "pre" else net.layers[layer].activate(z)).reshape(-1)
    return f


def _ks(exact_sv: np.ndarray, n: int, density) -> float:
    """Kolmogorov distance between the SLQ CDF and the exact eigenvalues of J^T J (n of them)."""
    lam = np.concatenate([exact_sv**2, np.zeros(n - len(exact_sv))])
    lam = np.where(lam <= n * np.finfo(float).eps * exact_sv[0] ** 2, 0.0, lam)
    t = np.unique(np.concatenate([lam, density.nodes.ravel()]))
    exact = np.searchsorted(np.sort(lam), t, side="right") / n
    est, _ = density.cdf_at(t)
    return float(np.abs(exact - est).max())


def test_top_k_matches_dense_svd_on_cifar_size_input():
    model = _conv_net()
    torch.manual_seed(1)
    x = torch.rand(1, 3, 32, 32)
    spec = spectra(model, x, layers=[1, 2], method="lanczos", k=10, probes=0, rtol=RTOL)
    net = nets.load(model, input_shape=(3, 32, 32)).copy(dtype=torch.float64)
    x1 = x.double().reshape(-1)
    assert spec.method == "lanczos" and all(s.estimated and s.method == ("lanczos",) for s in spec)
    for s in spec:
        o = s.output
        sv = _dense_sv(_chain_f(net, o.layer, o.stage), x1)
        mf = s.matfree[0]
        kk = min(10, len(sv))
        assert mf.converged
        rel = np.abs(s.singular_values[0, :kk] - sv[:kk]) / sv[:kk]
        assert rel.max() <= max(RTOL, s.error_bound[0]) * 1.01 + 1e-12, (o.label, rel.max())
        assert np.all(np.abs(mf.top[:kk] - sv[:kk]) <= mf.top_bound[:kk] + 1e-12 * sv[0])
        smallest = sv[sv > max(sv.shape[0], 3072) * np.finfo(float).eps * sv[0]][-1]
        assert mf.rank_lo <= np.sum(sv > 3072 * np.finfo(float).eps * sv[0]) <= mf.rank_hi
        if mf.sigma_min_status in ("exact", "resolved"):
            assert abs(mf.sigma_min - smallest) <= mf.sigma_min_bound + 1e-10 * sv[0]
        else:  # an upper bound
            assert smallest <= mf.sigma_min + mf.sigma_min_bound + 1e-12
    # the logits (10 rows): the row space is exhausted, every figure exact
    last = spec.layers[-1].matfree[0]
    assert last.rank_exact and last.sigma_min_status == "exact" and last.rank == 10


def test_density_cdf_within_stated_kolmogorov_distance():
    model = _conv_net()
    torch.manual_seed(2)
    x1 = torch.rand(3 * 32 * 32, dtype=torch.float64)
    net = nets.load(model, input_shape=(3, 32, 32)).copy(dtype=torch.float64)
    f = _chain_f(net, 1, "post")  # 8×8×8 after the second ReLU: rank-deficient (zero atom)
    sv = _dense_sv(f, x1)
    r = matfree_spectrum(JacobianOperator(f, x1), k=5, probes=16, slq_steps=40, seed=3)
    # the zero atom (n - rank of the n eigenvalues) merges with the small ones into the lowest
    # node: the stated bound holds but is loose there (see `_matfree`)
    assert _ks(sv, x1.numel(), r.density) <= r.density.ks_bound
    assert r.rank_lo <= np.sum(sv > 3072 * np.finfo(float).eps * sv[0]) <= r.rank_hi
    f0 = _chain_f(net, 0, "pre")  # full rank: the CDF is close
    sv0 = _dense_sv(f0, x1)
    r0 = matfree_spectrum(JacobianOperator(f0, x1), k=5, probes=16, slq_steps=40, seed=3)
    assert _ks(sv0, x1.numel(), r0.density) <= r0.density.ks_bound < 0.2
    assert abs(r0.density.cdf[-1] - 1) < 1e-9 and np.all(np.diff(r0.density.cdf) >= -1e-12)


@pytest.mark.parametrize("repeated", [False, True])
def test_known_rank(repeated):
    g = torch.Generator().manual_seed(4)
    m, n, r = 60, 80, 7
    if repeated:  # an orthogonal projection: every nonzero singular value is 1 (restarts needed)
        Q = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))[0]
        A = torch.cat([Q.T, torch.zeros(m - r, n, dtype=torch.float64)])
    else:
        A = torch.randn(m, r, generator=g, dtype=torch.float64) @ torch.randn(r, n, generator=g,
                                                                                dtype=torch.float64)
    res = matfree_spectrum(JacobianOperator(lambda v: A @ v, torch.zeros(n, dtype=torch.float64)), k=10,
                           probes=8)
    assert res.rank_exact and res.rank == r and res.sigma_min_status == "exact"
    sv = torch.linalg.svdvals(A).numpy()
    np.testing.assert_allclose(res.top[:r], sv[:r], rtol=1e-10)
    assert np.all(res.top[r:] == 0)
    # the SLQ zero mass agrees with (n - r) / n within its error bars
    assert abs(res.density.zero_mass - (n - r) / n) <= 4 * res.density.zero_mass_se + 0.02


def test_graph_residual_model():
    model, shape = tiny_resnet()
    graph = nets.load(model, input_shape=shape)
    torch.manual_seed(5)
    x = torch.randn(1, *shape)
    g64 = graph.copy(dtype=torch.float64)
    adds = [i for i, node in enumerate(g64.nodes) if node.op == "join" and node.kind == "add"]
    picked = [adds[0], adds[-1], len(g64.nodes) - 1]  # residual adds and the logits
    spec = spectra(graph, x, layers=picked, method="lanczos", k=5, probes=4)
    x1 = x.double().reshape(-1)
    assert [s.output.layer for s in spec] == picked
    for s in spec:
        name = s.output.name

        def f(v, name=name):
            return g64.run(v.reshape(1, *shape), keep=[name])[name].reshape(-1)

        sv = _dense_sv(f, x1)
        kk = min(5, len(sv), int(np.sum(sv > 1e-12 * sv[0])))
        rel = np.abs(s.singular_values[0, :kk] - sv[:kk]) / sv[:kk]
        assert rel.max() <= max(RTOL, s.error_bound[0]) * 1.01 + 1e-12, (name, rel.max())


def test_auto_keeps_exact_when_it_fits_and_says_why_when_not():
    model = nets.mlp([12, 9, 4])
    torch.manual_seed(6)
    x = torch.randn(2, 12)
    default = spectra(model, x)
    exact = spectra(model, x, method="exact")
    assert default.method == "auto" and exact.method == "exact"
    for a, b in zip(default, exact):
        assert not a.estimated and a.method == b.method
        np.testing.assert_array_equal(a.singular_values, b.singular_values)
    tight = spectra(model, x, max_bytes=1500, k=3, probes=4)
    assert any(s.estimated for s in tight)
    for s in tight:
        if s.estimated:
            assert "over the limit" in s.method_reason and s.singular_values.shape == (2, 3)
            ref = exact[s.output.index].singular_values[:, :3]
            for b, mf in enumerate(s.matfree):  # the bases are capped by max_bytes too: honest flags
                if mf.converged:
                    np.testing.assert_allclose(s.singular_values[b], ref[b], rtol=1e-6)
                else:
                    assert np.any(mf.top_bound > RTOL * mf.top)
    rows = tight.to_frame() if _has_pandas() else None
    if rows is not None:
        assert "estimated" in rows.columns and rows["estimated"].any()
    d = tight.to_dict()
    assert any(layer.get("estimated") for layer in d["layers"])


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_sizes_and_memory_scale():
    # the bases take O(steps·(m + n)): a 3×224×224-size operator is never formed densely
    from reluscope.jacobian._matfree import max_steps_for

    n = 3 * 224 * 224
    assert max_steps_for(64 * 112 * 112, n, 8, 2 * 1024**3) >= 100
    assert math.prod((3, 224, 224)) == n
