"""Large inputs (ResNet-18 with the ImageNet stem): linearized products, stage outputs, the CLI."""

from __future__ import annotations

import json

import numpy as np
import torch

from reluscope import nets
from reluscope.cli import main
from reluscope.jacobian._graph_spectra import cast, graph_outputs
from reluscope.jacobian._matfree import JacobianOperator, matfree_spectrum, node_function, stage_nodes


def test_imagenet_stem_shapes():
    torch.manual_seed(0)
    model = nets.resnet18(imagenet_stem=True, classes=7).eval()
    x = torch.rand(1, 3, 224, 224)
    h = model.stem(x)
    assert h.shape == (1, 64, 56, 56)  # 7×7 stride 2 then 3×3 stride-2 max-pool
    sizes = []
    for i in range(1, 5):
        h = getattr(model, f"stage{i}")(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert model(x).shape == (1, 7)
    assert model.stem.conv.kernel_size == (7, 7) and model.stem.conv.stride == (2, 2)
    cifar = nets.resnet18()
    assert cifar.stem.conv.kernel_size == (3, 3) and not hasattr(cifar.stem, "maxpool")
    # same parameters but the stem conv (7×7 instead of 3×3)
    cifar7 = nets.resnet18(classes=7)
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in cifar7.parameters())
    assert extra == 64 * 3 * (49 - 9)
    from reluscope.nets._builders import build

    assert build("resnet18_imagenet", (3, 64, 64), 10).stem.conv.kernel_size == (7, 7)


def test_stage_nodes_are_stage_outputs_and_logits():
    graph = nets.load(nets.resnet18(imagenet_stem=True).eval(), input_shape=(3, 64, 64))
    assert stage_nodes(graph) == ["stage1.1.relu2", "stage2.1.relu2", "stage3.1.relu2", "stage4.1.relu2",
                                  "fc"]


def test_linearized_products_equal_jvp_products():
    torch.manual_seed(1)
    graph = cast(nets.load(nets.ResNet([1, 1], [4, 8]).eval(), input_shape=(3, 8, 8)), torch.float64)
    (o,) = graph_outputs(graph, ["stage2.0.relu2"])
    f = node_function(graph, o)
    x = torch.rand(3 * 8 * 8, dtype=torch.float64)
    plain, lin = JacobianOperator(f, x, linearize=False), JacobianOperator(f, x, linearize=True)
    assert lin.linearized and not plain.linearized
    V = torch.randn(5, x.numel(), dtype=torch.float64)
    a, b = plain.matvec(V), lin.matvec(V)
    assert a.abs().max() > 0
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12 * float(a.abs().max()))
    # the same spectrum from either operator (same seed, same products to rounding)
    ra = matfree_spectrum(plain, k=4, probes=2, slq_steps=5)
    rb = matfree_spectrum(lin, k=4, probes=2, slq_steps=5)
    np.testing.assert_allclose(rb.top, ra.top, rtol=1e-9)


def test_float32_top_k_within_the_float32_tolerance():
    g = torch.Generator().manual_seed(2)
    d = torch.cat([torch.tensor([3.0, 2.5, 2.0]), torch.rand(1997, generator=g)])
    r = matfree_spectrum(JacobianOperator(lambda v: d * v, torch.ones(2000)), k=3, rtol=1e-9, probes=0)
    assert r.converged  # asked to FLOAT32_RTOL (1e-4), not to 1e-9
    np.testing.assert_allclose(r.top, [3.0, 2.5, 2.0], rtol=1e-4)


def test_cli_end_to_end_on_a_64px_resnet18(tmp_path, capsys):

    torch.manual_seed(0)
    path = tmp_path / "r18.pt"
    torch.save(nets.resnet18(imagenet_stem=True).state_dict(), path)
    out = tmp_path / "out.json"
    code = main(["jacobian", str(path), "--arch", "resnet18_imagenet", "--input-shape", "3,64,64", "--n", "1",
                 "--method", "lanczos", "--k", "2", "--probes", "2", "--steps", "3", "--max-steps", "4",
                 "--json", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "matrix-free estimates" in printed.out and "stage4.1.relu2" in printed.out
    assert "resized from 1x8x8 to 3x64x64" in printed.err
    d = json.loads(out.read_text())
    assert d["inputs_resized_from"] == [1, 8, 8]
    assert len(d["layers"]) == 5 and all(layer["estimated"] for layer in d["layers"])
    assert any("float32" in note for note in d["notes"])


def test_report_section_on_a_large_input_goes_matrix_free_on_the_stages(monkeypatch):
    from reluscope.data import Split
    from reluscope.jacobian import report
    from reluscope.report._registry import ReportContext

    monkeypatch.setattr(report, "LARGE_QUICK", dict(k=2, probes=2, steps=3, max_steps=6,
                                                    max_bytes=1e6))  # as if the dense path did not fit
    torch.manual_seed(3)
    model = nets.ResNet([1, 1], [4, 8], imagenet_stem=True).eval()
    x = torch.rand(3, 3, 64, 64)
    data = type("D", (), {"test": Split(x, torch.zeros(3, dtype=torch.long))})()
    sec = report.build(ReportContext(model=model, net=nets.load(model, input_shape=(3, 64, 64)), data=data))
    names = [layer["output"]["name"] for layer in sec.json["layers"]]
    assert names == ["stage1.0.relu2", "stage2.0.relu2", "fc"] and sec.numbers["samples"] == 1
    assert all(layer["estimated"] for layer in sec.json["layers"])
    assert "ESTIMATED" in sec.body and "Large input (12,288 values)" in sec.body
