"""Spectra against NumPy's SVD of the explicit Jacobian; accuracy bounds; memory checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import ConfigError, ResourceError
from reluscope.jacobian import estimate_bytes, jacobians, spectra
from reluscope.jacobian._jacobians import input_chunks, outputs
from reluscope.jacobian._spectra import structural_rows


def _cnn() -> nn.Module:
    """A small CNN with strides and a dense head; wide enough that ReLUs drop rank."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 4))


def _check_against_numpy(spec, J, rtol=1e-8):
    for layer, (o, jac) in zip(spec, J.items()):
        assert layer.output == o
        for b in range(jac.shape[0]):
            ref = np.linalg.svd(jac[b].numpy(), compute_uv=False)
            got = layer.singular_values[b]
            assert got.shape == ref.shape
            r = int(layer.rank[b])
            np.testing.assert_allclose(got[:r], ref[:r], rtol=rtol, atol=0)
            assert np.all(got[r:] == 0)
            # what was set to zero is below the stated resolution
            d = max(jac.shape[1:])
            assert np.all(ref[r:] <= math.sqrt(d * np.finfo(float).eps) * ref[0] * 1.01)
            assert layer.condition[b] == pytest.approx(ref[0] / ref[r - 1], rel=1e-7)


@pytest.mark.parametrize("method", ["gram", "svd", "auto"])
def test_cnn_spectra_equal_numpy_svd(method):
    model = _cnn()
    x = torch.rand(2 if method == "gram" else 1, 2, 8, 8)
    spec = spectra(model, x, method=method, chunk=32)
    J = jacobians(model, x)
    assert len(spec) == 9 and spec.samples == len(x)
    _check_against_numpy(spec, J)
    assert all(set(s.method) <= {"gram", "svd"} for s in spec)


def test_cifar_cnn_spectra_equal_numpy_svd():
    torch.manual_seed(3)
    model = nets.cifar_cnn(in_channels=1, image_size=8, classes=3)
    x = torch.rand(1, 1, 8, 8)
    spec = spectra(model, x, chunk=16)
    assert len(spec) == 15
    _check_against_numpy(spec, jacobians(model, x))


def test_mlp_spectra_and_active_units():
    torch.manual_seed(1)
    model = nets.mlp([20, 30, 12, 5]).double()
    x = torch.randn(3, 20, dtype=torch.float64)
    spec = spectra(model, x, chunk=7)
    _check_against_numpy(spec, jacobians(model, x))
    z = nets.load(model).trace(x).pre
    np.testing.assert_array_equal(spec[1].active, (z[0] > 0).sum(1).numpy())
    np.testing.assert_array_equal(spec["3:post"].active, (z[1] > 0).sum(1).numpy())
    # after a ReLU the rank is at most the number of active units
    assert np.all(spec[4].rank <= spec[4].active)
    assert spec[5].active is None


def test_gram_and_svd_meet_stated_bounds_and_auto_switches():
    # A linear layer with a designed spectrum from 1 down to 3e-8: gram squares κ.
    torch.manual_seed(2)
    n = 40
    u, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    s = torch.logspace(0, -7.5, n, dtype=torch.float64)
    lin = nn.Sequential(nn.Linear(n, n, bias=False)).double()
    lin[0].weight.data = u @ torch.diag(s) @ v.T
    exact = s.numpy()
    kappa = exact[0] / exact
    x = torch.randn(1, n, dtype=torch.float64)
    eps, d = np.finfo(float).eps, n
    g = spectra(lin, x, method="gram")[1]
    r = int(g.rank[0])
    rel = np.abs(g.singular_values[0, :r] - exact[:r]) / exact[:r]
    assert np.all(rel <= 10 * d * eps * kappa[:r] ** 2)
    assert r < n and np.all(exact[r:] <= math.sqrt(d * eps) * 1.01)  # tail below resolution
    a = spectra(lin, x, method="auto", rtol=1e-6)[1]
    assert a.method == ("svd",) and int(a.rank[0]) == n
    rel = np.abs(a.singular_values[0] - exact) / exact
    assert np.all(rel <= 10 * d * eps * kappa)
    assert a.error_bound[0] == pytest.approx(d * eps * kappa[-1], rel=1e-3)
    # well conditioned: auto stays on the Gram matrix
    assert spectra(nets.mlp([5, 3]).double(), torch.randn(1, 5), rtol=1e-6)[1].method == ("gram",)


def test_structural_estimate_bounds_the_real_supports():
    net = nets.load(_cnn(), input_shape=(2, 8, 8)).copy(dtype=torch.float64)
    chunks = input_chunks(net.input_shape, 12)
    assert sorted(torch.cat(chunks).tolist()) == list(range(128))
    rows = structural_rows(net, chunks)
    J = jacobians(net, torch.rand(1, 2, 8, 8))
    for o, jac in J.items():
        for a, cols in enumerate(chunks):
            real = int(jac[0][:, cols].ne(0).any(1).sum())
            assert real <= rows[(o.layer, o.stage)][a]
    assert estimate_bytes(net, outputs(net), chunks) > 0


def test_bad_arguments():
    model = _cnn()
    x = torch.rand(1, 2, 8, 8)
    with pytest.raises(ConfigError, match="method"):
        spectra(model, x, method="qr")
    with pytest.raises(ConfigError, match="rtol"):
        spectra(model, x, rtol=0)
    with pytest.raises(ResourceError, match="layers="):  # auto would go matrix-free instead
        spectra(model, x, max_bytes=1e5, method="exact")
    with pytest.raises(ConfigError, match="layer"):
        spectra(model, x, layers=["nope"])


def test_to_dict_is_json_ready(tmp_path):
    from reluscope._io import write_json

    spec = spectra(nets.mlp([4, 6, 3]), torch.randn(2, 4), layers=[0])
    d = spec.to_dict()
    assert [layer["output"]["stage"] for layer in d["layers"]] == ["pre", "post"]
    write_json(tmp_path / "s.json", spec)
    assert (tmp_path / "s.json").stat().st_size > 0
