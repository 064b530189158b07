"""`analyze` on models: layers, initial model, determinism, JSON, errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope._io import write_json
from reluscope.errors import ConfigError, ModelError
from reluscope.spectrum import analyze, reinitialise, weight_matrix


def test_mlp_at_init_is_random_like_and_deterministic():
    torch.manual_seed(0)
    model = nets.mlp([64, 200, 100, 10])
    a, b = analyze(model, seed=3), analyze(model, seed=3)
    assert [ls.name for ls in a.layers] == ["1", "3", "5"]
    assert [ls.verdict.label for ls in a.layers[:2]] == ["random-like", "random-like"]
    # PyTorch's default init is uniform: the spectrum is MP but the entries are not Gaussian
    assert a.layers[0].weight.excess_kurtosis == pytest.approx(-1.2, abs=0.1)
    assert not a.layers[0].verdict.entries_gaussian
    assert np.array_equal(a.layers[0].gaussian_singular_values, b.layers[0].gaussian_singular_values)
    assert a.layers[0].singular_values == pytest.approx(
        np.linalg.svd(model[1].weight.detach().double().numpy(), compute_uv=False))


def test_init_side_by_side_and_json(tmp_path):
    torch.manual_seed(0)
    model = nets.mlp([64, 128, 10])
    res = analyze(model, init_model=True, seed=1)
    assert res.init is not None and len(res.init) == len(res.layers)
    assert res.settings["init"] == "re-initialised"
    rows = res.table()
    assert {"verdict", "init_verdict", "outliers", "init_outliers", "alpha"} <= set(rows[0])
    path = write_json(tmp_path / "s.json", res)
    data = json.loads(path.read_text())
    assert data["layers"][0]["mp"]["n_outliers"] == res.layers[0].mp.n_outliers
    assert data["init"][0]["verdict"]["label"] == res.init[0].verdict.label


def test_reinitialise_changes_weights_reproducibly():
    torch.manual_seed(0)
    model = nets.mlp([8, 16, 2])
    a, b = reinitialise(model, 5), reinitialise(model, 5)
    assert torch.equal(a[1].weight, b[1].weight) and not torch.equal(a[1].weight, model[1].weight)


def test_conv_net_has_operator_spectrum_and_kernel_matrix():
    torch.manual_seed(0)
    model = nets.cifar_cnn(in_channels=1, image_size=6, classes=10)
    res = analyze(model, input_shape=(1, 6, 6))
    conv = res.layers[1]
    assert conv.kind == "conv2d" and conv.shape == (64, 32 * 9)
    assert conv.conv is not None and conv.conv.method == "dense" and conv.conv.exact
    layer = nets.load(model, input_shape=(1, 6, 6)).layers[1]
    assert weight_matrix(layer).shape == (64, 288)
    assert res.layers[-1].conv is None


def test_errors():
    with pytest.raises(ConfigError):
        analyze("not a model")
    model = nets.mlp([8, 16, 2])
    with pytest.raises(ModelError):
        analyze(model, init_model=nets.mlp([8, 32, 2]))
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    with pytest.raises(ModelError):
        analyze(model)
    with pytest.raises(ModelError):
        analyze(nn.Sequential(nn.ReLU()), input_shape=(4,))
