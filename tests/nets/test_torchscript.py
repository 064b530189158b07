"""TorchScript files: scripted and traced Sequentials rebuild into eager modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import UnsupportedLayerError
from reluscope.nets._import import _from_torchscript

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _models():
    torch.manual_seed(0)
    cnn = nets.cifar_cnn(image_size=16).eval()
    mlp = nets.mlp([12, 20, 16, 3]).eval()
    mixed = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
        nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(2, stride=1, padding=1),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * 3 * 3, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    with torch.no_grad():
        mixed[1].running_mean.uniform_(-0.5, 0.5)
        mixed[1].running_var.uniform_(0.5, 1.5)
    return {"cnn": (cnn, (3, 16, 16)), "mlp": (mlp, (12,)), "mixed": (mixed, (3, 8, 8))}


@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("name", ["cnn", "mlp", "mixed"])
def test_scripted_and_traced_sequentials_load(tmp_path, how, name):
    model, shape = _models()[name]
    x = torch.rand(3, *shape)
    scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, x)
    path = tmp_path / f"{name}.pt"
    torch.jit.save(scripted, str(path))
    net = nets.load(path, input_shape=shape)
    torch.testing.assert_close(net(x), model(x))
    eager = _from_torchscript(torch.jit.load(str(path)))
    assert [type(m) for m in eager] == [type(m) if not isinstance(m, nn.Dropout) else nn.Identity
                                        for m in model]


def test_traced_settings_read_from_graph(tmp_path):
    model, shape = _models()["mixed"]
    torch.jit.save(torch.jit.trace(model, torch.rand(1, *shape)), str(tmp_path / "t.pt"))
    eager = _from_torchscript(torch.jit.load(str(tmp_path / "t.pt")))
    assert eager[0].bias is None and tuple(eager[0].stride) == (2, 2)
    assert eager[2].negative_slope == pytest.approx(0.2) and eager[3].ceil_mode
    assert tuple(eager[4].padding) == (1, 1) and tuple(eager[4].stride) == (1, 1)


def test_unrebuildable_modules_raise_one_clear_error(tmp_path):
    circular = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.ReLU()).eval()
    torch.jit.save(torch.jit.trace(circular, torch.rand(1, 1, 6, 6)), str(tmp_path / "c.pt"))
    with pytest.raises(UnsupportedLayerError, match="'0' of type Conv2d cannot be rebuilt"):
        nets.load(tmp_path / "c.pt", input_shape=(1, 6, 6))
    lstm = nn.Sequential(nn.Linear(3, 3), nn.Softsign()).eval()
    torch.jit.save(torch.jit.script(lstm), str(tmp_path / "u.pt"))
    with pytest.raises(UnsupportedLayerError, match="type Softsign is not supported"):
        nets.load(tmp_path / "u.pt", input_shape=(3,))
