"""ONNX files: converted by onnx2torch, imported as graphs named after the model's modules."""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.cli import main
from reluscope.errors import ModelError, UnsupportedLayerError
from reluscope.nets import _onnx

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnx2torch")),
    reason="needs the onnx extra (onnx, onnx2torch)")


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv1(x)))
        h = torch.relu(self.conv2(h) + h)
        return self.fc(self.pool(h).view(x.size(0), -1))


def _export(model: nn.Module, shape, path, **kwargs):
    """torch.onnx.export with a dynamic batch (the TorchScript exporter: no onnxscript needed)."""
    model.eval()
    kwargs = {"opset_version": 17, "input_names": ["input"], "output_names": ["output"],
              "dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}}, **kwargs}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.rand(2, *shape),), str(path), dynamo=False, **kwargs)
    except (TypeError, ImportError, RuntimeError) as exc:  # pragma: no cover - exporter gone
        pytest.skip(f"torch.onnx.export unavailable here: {exc}")
    return path


@needs_onnx
@pytest.mark.parametrize("which", ["mlp", "residual", "resnet20"])
def test_exported_models_load_and_match(tmp_path, which):
    torch.manual_seed(0)
    model, shape, names = {
        "mlp": (nets.mlp([12, 16, 4]), (12,), ["1", "2", "3"]),
        "residual": (Residual(), (3, 8, 8), ["conv1", "relu", "conv2", "add", "relu_1", "fc"]),
        "resnet20": (nets.resnet20(), (3, 16, 16), ["stem.conv", "stage1.0.add", "stage2.0.shortcut.conv",
                                                    "stage3.2.relu2", "fc"]),
    }[which]
    if which != "mlp":
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # batch norms the exporter folds into the convs
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    path = _export(model, shape, tmp_path / f"{which}.onnx")
    graph = nets.load(path)  # the input shape comes from the file
    assert graph.input_shape == shape
    x = torch.rand(5, *shape)
    with torch.no_grad():
        torch.testing.assert_close(graph(x), model.eval()(x), atol=1e-5, rtol=1e-5)
    got = [n.name for n in graph.nodes]
    assert set(names) <= set(got), got
    assert not any("/" in n for n in got)
    assert graph.is_chain == (which == "mlp")


@needs_onnx
def test_default_opset_and_fixed_batch(tmp_path):
    # the exporter's default opset (20 in torch 2.13) is newer than onnx2torch converts: taken
    # down to 17; a model exported with a fixed batch (2) still reads as a per-sample model
    torch.manual_seed(0)
    model = nets.resnet20()
    path = _export(model, (3, 8, 8), tmp_path / "d.onnx", opset_version=None, dynamic_axes=None)
    graph = nets.load(path)
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(graph(x), model(x), atol=1e-5, rtol=1e-5)


@needs_onnx
def test_info_reads_an_onnx_file(tmp_path, capsys):
    path = _export(Residual(), (3, 8, 8), tmp_path / "r.onnx")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "add" in out


def _onnx_model(nodes, inits, in_shape=("batch", 4), out_shape=("batch", 3)):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@needs_onnx
def test_hand_built_graph_without_an_exporter(tmp_path):
    import onnx
    from onnx import helper

    rng = torch.Generator().manual_seed(1)
    w1, b1, w2 = (torch.randn(*s, generator=rng) for s in ((6, 4), (6,), (3, 6)))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="/fc1/Gemm", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="/act/Relu"),
             helper.make_node("Gemm", ["r", "w2"], ["y"], name="/fc2/Gemm", transB=1)]
    model = _onnx_model(nodes, {"w1": w1.numpy(), "b1": b1.numpy(), "w2": w2.numpy()})
    onnx.save(model, str(tmp_path / "h.onnx"))
    net = nets.load(tmp_path / "h.onnx")
    assert [n.name for n in net.nodes][1:] == ["fc1", "act", "fc2"]
    x = torch.rand(3, 4)
    torch.testing.assert_close(net(x), torch.relu(x @ w1.T + b1) @ w2.T)


@needs_onnx
def test_unconvertible_and_corrupt_files_raise_one_clear_error(tmp_path):
    import onnx
    from onnx import helper

    model = _onnx_model([helper.make_node("Hardmax", ["x"], ["y"], name="/h/Hardmax", axis=7)], {},
                        out_shape=("batch", 4))
    onnx.save(model, str(tmp_path / "u.onnx"))
    with pytest.raises(UnsupportedLayerError, match="no converter for ONNX operation Hardmax"):
        nets.load(tmp_path / "u.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match="not an ONNX model"):
        nets.load(tmp_path / "bad.onnx")


@needs_onnx
def test_reshape_to_a_computed_shape_is_refused(tmp_path):
    class Squash(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            h = self.fc(x)
            return h.view(h.size(0) // 2, -1)  # mixes samples: not a per-sample reshape

    path = _export(Squash(), (4,), tmp_path / "s.onnx")
    with pytest.raises(UnsupportedLayerError, match="reshapes to a shape"):
        nets.load(path)


def test_without_the_extra_one_line_says_how_to_install(tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(_onnx.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx2torch" else find_spec(name, *a))
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match=r"pip install 'reluscope\[onnx\]'"):
        nets.load(tmp_path / "m.onnx")
    assert main(["info", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reluscope[onnx]" in err
