"""Model import: layer tables, BN folding, fx tracing, TorchScript, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reluscope import nets
from reluscope.errors import CheckpointError, ModelError, ShapeError, UnsupportedLayerError


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))


def test_mlp_layer_table():
    net = nets.load(nets.mlp([20, 30, 40, 5]))
    rows = net.summary()
    assert [r["type"] for r in rows] == ["Linear"] * 3
    assert [r["in_shape"] for r in rows] == [[20], [30], [40]]
    assert [r["out_shape"] for r in rows] == [[30], [40], [5]]
    assert [r["activation"] for r in rows] == ["relu", "relu", "identity"]
    assert [r["parameters"] for r in rows] == [20 * 30 + 30, 30 * 40 + 40, 40 * 5 + 5]
    assert net.input_shape == (20,)


def test_cifar_cnn_layer_table():
    net = nets.load(nets.cifar_cnn(), input_shape=(3, 32, 32))
    rows = net.summary()
    assert [r["kind"] for r in rows] == ["conv2d"] * 6 + ["linear"] * 2
    assert [tuple(r["out_shape"]) for r in rows] == [
        (32, 32, 32), (64, 16, 16), (64, 16, 16), (32, 16, 16), (32, 16, 16), (64, 8, 8), (512,), (10,)]
    assert rows[6]["in_shape"] == [64 * 8 * 8]
    assert rows[-1]["activation"] == "identity"
    assert all(r["activation"] == "relu" for r in rows[:-1])


def test_forward_matches_model():
    torch.manual_seed(0)
    model = nets.cifar_cnn().eval()
    net = nets.load(model, input_shape=(3, 32, 32))
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(net(x), model(x))
    tr = net.trace(x)
    assert len(tr.pre) == len(net) and torch.equal(tr.masks[0], tr.pre[0] > 0)
    torch.testing.assert_close(tr.output, model(x))


@pytest.mark.parametrize("bn_position", ["after_conv", "before_linear", "mlp_bn"])
def test_batch_norm_folding_equals_unfolded(bn_position):
    torch.manual_seed(1)
    if bn_position == "after_conv":
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
        shape = (3, 6, 6)
    elif bn_position == "before_linear":
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8), nn.Flatten(),
                              nn.Linear(8 * 4 * 4, 4))
        shape = (3, 6, 6)
    else:
        model = nets.mlp([10, 16, 16, 3], batch_norm=True)
        shape = (10,)
    _randomise_bn(model)
    model.eval()
    net = nets.load(model, input_shape=shape)
    assert any("BN folded" in r["type"] for r in net.summary())
    x = torch.randn(16, *shape)
    assert (net(x) - model(x)).abs().max() < 1e-5
    # the folded layer parameters themselves reproduce the pre-activations
    layer = next(la for la in net if la.bn_after is not None or la.bn_before is not None)
    w, b = layer.weight, layer.bias
    assert torch.isfinite(w).all() and b.shape[0] == w.shape[0]


def test_batch_norm_before_padded_conv_stays_its_own_node():
    # Folding would apply the shift where the padded conv sees zeros: it stays apart, exact.
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3, padding=1))
    _randomise_bn(model)
    model.eval()
    graph = nets.load(model, input_shape=(1, 8, 8))
    assert not graph.is_chain
    assert [n.kind for n in graph.nodes[1:]] == ["conv2d", "relu", "batchnorm", "conv2d"]
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(graph(x), model(x))


class CustomNet(nn.Module):
    """A custom module with functional calls and view, traced with torch.fx."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(4 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        x = F.leaky_relu(self.fc1(x), 0.1)
        return self.fc2(x)


def test_custom_module_is_traced():
    model = CustomNet()
    net = nets.load(model, input_shape=(1, 16, 16))
    assert [la.kind for la in net] == ["conv2d", "avgpool2d", "linear", "linear"]
    assert [la.activation for la in net] == ["relu", "identity", "leaky_relu", "identity"]
    x = torch.randn(5, 1, 16, 16)
    torch.testing.assert_close(net(x), model(x))


def test_maxpool_recognised():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3))
    net = nets.load(model, input_shape=(1, 8, 8))
    assert net[0].activation == "relu+maxpool2d"


def test_lstm_is_a_clear_error():
    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 8)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    with pytest.raises(UnsupportedLayerError, match=r"'rnn' of type LSTM is not supported.*Linear"):
        nets.load(Seq())


def test_residual_is_a_graph_not_a_chain():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.a(x)

    model = Res()
    graph = nets.load(model)
    assert not graph.is_chain and not isinstance(graph, nets.ReluNet)
    assert [(n.kind, n.inputs) for n in graph.nodes[1:]] == [("linear", ("x",)), ("add", ("x", "a"))]
    x = torch.randn(3, 4)
    torch.testing.assert_close(graph(x), model(x))


def test_nan_weights_are_refused():
    model = nets.mlp([4, 5, 2])
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    with pytest.raises(ModelError, match="NaN"):
        nets.load(model)


def test_wrong_input_shape():
    net = nets.load(nets.cifar_cnn(), input_shape=(3, 32, 32))
    with pytest.raises(ShapeError, match=r"expects \(batch, 3, 32, 32\)"):
        net(torch.zeros(2, 1, 28, 28))


def test_conv_model_needs_input_shape():
    with pytest.raises(ShapeError, match="input_shape"):
        nets.load(nets.cifar_cnn())


def test_conv_dense_matrix_equals_conv():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1, groups=1), nn.ReLU(),
                          nn.Conv2d(3, 3, 3, padding=2, dilation=2, groups=3))
    net = nets.load(model, input_shape=(2, 7, 7))
    for layer in net:
        a = layer.dense_matrix()
        x = torch.randn(4, *layer.in_shape)
        want = layer.affine(x, bias=False).flatten(1)
        torch.testing.assert_close(x.flatten(1) @ a.T, want, atol=1e-5, rtol=1e-5)


def test_dense_matrix_too_large_names_the_size():
    net = nets.load(nets.cifar_cnn(), input_shape=(3, 32, 32))
    with pytest.raises(Exception, match=r"32768x3072"):
        net[0].dense_matrix(max_bytes=1024)


def test_locally_connected_matches_brute_force():
    torch.manual_seed(0)
    lc = nets.LocallyConnected2d(2, 3, (5, 6), kernel_size=(2, 3), stride=(1, 3))
    x = torch.randn(2, 2, 5, 6)
    out = lc(x)
    oh, ow = lc.out_size
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i:i + 2, 3 * j:3 * j + 3].reshape(2, -1)
            want = patch @ lc.weight[i, j].T + lc.bias[:, i, j]
            torch.testing.assert_close(out[:, :, i, j], want)
    net = nets.load(nets.locally_connected((1, 8, 8), [4, 2], 2, classes=3))
    assert [la.kind for la in net] == ["locally_connected", "locally_connected", "linear"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_and_pickled_module_files(tmp_path):
    model = nets.cifar_cnn(image_size=16).eval()
    x = torch.rand(2, 3, 16, 16)
    torch.jit.script(model).save(str(tmp_path / "s.pt"))
    torch.save(model, tmp_path / "whole.pt")
    for name in ("s.pt", "whole.pt"):
        net = nets.load(tmp_path / name, input_shape=(3, 16, 16), trust_pickle=name == "whole.pt")
        torch.testing.assert_close(net(x), model(x))


def test_checkpoint_round_trip(tmp_path):
    model = nets.build("mlp:16", (1, 4, 4), 3)
    init = nets.build("mlp:16", (1, 4, 4), 3)
    nets.save_checkpoint(tmp_path / "m.pt", model, "mlp:16", (1, 4, 4), 3, init_model=init, history=[1])
    file = nets.read_model_file(tmp_path / "m.pt")
    assert file.input_shape == (1, 4, 4) and file.meta["history"] == [1]
    x = torch.rand(3, 1, 4, 4)
    torch.testing.assert_close(nets.load(tmp_path / "m.pt")(x), model.eval()(x))
    torch.testing.assert_close(file.init_model(x), init.eval()(x))


def test_file_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        nets.load(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    torch.save(nets.mlp([3, 2]), bad)
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        nets.load(bad)
    sd = tmp_path / "sd.pt"
    torch.save(nets.mlp([3, 2]).state_dict(), sd)
    with pytest.raises(CheckpointError, match="state_dict"):
        nets.load(sd)


def test_relunet_follows_training_weights():
    model = nets.mlp([3, 4, 2])
    net = nets.load(model)
    with torch.no_grad():
        model[1].weight.add_(1.0)
    torch.testing.assert_close(net[0].weight, model[1].weight)
