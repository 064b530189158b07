"""Forward-mode Jacobians of every layer against autograd and central finite differences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.errors import ConfigError, ModelError, ResourceError, ShapeError
from reluscope.jacobian import jacobians, outputs


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(27, 5), nn.ReLU(), nn.Linear(5, 3)).double()


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nets.mlp([6, 9, 7, 4]).double()


def _exotic(seed: int = 0) -> nn.Module:
    """Max pooling, leaky ReLU, batch norm and average pooling: the generic jvp path."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
                      nn.Flatten(), nn.Linear(4, 3)).double()
    m[1].running_mean.normal_()
    m[1].running_var.uniform_(0.5, 2)
    return m.eval()


def _layer_fn(net, o):
    def f(v):
        tr = net.trace(v.unsqueeze(0))
        return (tr.pre if o.stage == "pre" else tr.post)[o.layer].reshape(-1)

    return f


def _local() -> nn.Module:
    torch.manual_seed(0)
    return nets.locally_connected((1, 4, 4), [3], 2, classes=2).double()


@pytest.mark.parametrize("make, shape", [(_mlp, (6,)), (_cnn, (2, 6, 6)), (_exotic, (2, 4, 4)),
                                         (_local, (1, 4, 4))])
def test_equals_autograd(make, shape):
    model = make()
    torch.manual_seed(1)
    x = torch.randn(2, *shape, dtype=torch.float64)
    net = nets.load(model, input_shape=shape)
    J = jacobians(net, x, chunk=5)  # small chunks: several tiles and ranges
    assert [o.index for o in J] == list(range(1, len(J) + 1))
    for o, jac in J.items():
        for b in range(2):
            ref = torch.autograd.functional.jacobian(_layer_fn(net, o), x[b], vectorize=True)
            ref = ref.reshape(o.size, -1)
            torch.testing.assert_close(jac[b], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", [(_mlp, (6,)), (_cnn, (2, 6, 6))])
def test_equals_central_differences(make, shape):
    model = make(3)
    net = nets.load(model, input_shape=shape)
    torch.manual_seed(4)
    x = torch.randn(1, *shape, dtype=torch.float64)
    tr = net.trace(x)
    # Central differences are exact for a piecewise-linear map when no unit flips sign.
    assert min(float(z.detach().abs().min()) for z in tr.pre) > 1e-4
    J = jacobians(net, x)
    h = 1e-6
    n = x[0].numel()
    steps = h * torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        plus, minus = net.trace(x + steps), net.trace(x - steps)  # all n directions at once
    for o, jac in J.items():
        stage = "pre" if o.stage == "pre" else "post"
        hi, lo = getattr(plus, stage)[o.layer], getattr(minus, stage)[o.layer]
        fd = ((hi - lo) / (2 * h)).reshape(n, -1).T
        torch.testing.assert_close(jac[0], fd, rtol=1e-6, atol=1e-7)


def test_float32_model_is_copied_not_changed():
    model = nets.mlp([4, 3, 2])
    J = jacobians(model, torch.randn(4))
    assert next(iter(J.values())).dtype == torch.float64
    assert next(model.parameters()).dtype == torch.float32


def test_layer_selection_by_name_and_index():
    net = nets.load(_mlp())
    outs = outputs(net, [0, net.layers[2].name])
    assert [(o.layer, o.stage) for o in outs] == [(0, "pre"), (0, "post"), (2, "pre")]
    assert [o.index for o in outs] == [1, 2, 5]


def test_bad_input_raises_one_clear_error():
    net = nets.load(_mlp())
    with pytest.raises(ShapeError, match="expects"):
        jacobians(net, torch.randn(2, 5, dtype=torch.float64))
    with pytest.raises(ShapeError, match="NaN"):
        jacobians(net, torch.full((1, 6), float("nan")))
    with pytest.raises(ModelError, match="nn.Module"):
        jacobians("model.pt", torch.randn(1, 6))
    with pytest.raises(ConfigError):
        jacobians(net, torch.randn(1, 6), layers=[])
    with pytest.raises(ResourceError, match="MiB"):
        jacobians(net, torch.randn(1, 6), max_bytes=100)


def test_windowed_tangents_equal_full_ones():
    from reluscope.jacobian._jacobians import basis_window, input_chunks, propagate_windows

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
                          nn.Conv2d(4, 4, (3, 1), padding=(1, 0), groups=2), nn.LeakyReLU(0.2),
                          nn.AvgPool2d(2), nn.Conv2d(4, 3, 2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(12, 2)).double()
    net = nets.load(model, input_shape=(2, 11, 11))
    x = torch.randn(1, 2, 11, 11, dtype=torch.float64)
    J = jacobians(net, x)
    seen = 0
    for cols in input_chunks(net.input_shape, 18):
        e = basis_window(net.input_shape, cols, torch.float64, "cpu")
        for (i, stage, _, t), (o, jac) in zip(propagate_windows(net, x, e), J.items()):
            assert (i, stage) == (o.layer, o.stage)
            seen += not t.is_whole
            torch.testing.assert_close(t.full().reshape(len(cols), -1).T, jac[0][:, cols], rtol=0, atol=1e-13)
    assert seen > 0  # windows were really used


def test_stage_selection():
    net = nets.load(_mlp())
    assert [o.index for o in outputs(net, stages=("pre",))] == [1, 3, 5]
    J = jacobians(net, torch.randn(1, 6), layers=[0], stages=("post",))
    assert [(o.layer, o.stage) for o in J] == [(0, "post")]
    with pytest.raises(ConfigError, match="stages"):
        jacobians(net, torch.randn(1, 6), layers=[2], stages=("post",))  # identity: no post
