"""Full-size reproduction (slow): trained vs initial for the digits MLP and a CIFAR-10 CNN.

Arora et al.'s panels: entry histograms and singular values of trained weights vs a
Gaussian matrix. Measured here: at initialisation every judged layer reads random-like;
after training, layers grow eigenvalues above the MP edge (spikes or a tail).
"""

import pytest
import torch

from reluscope import nets, zoo
from reluscope.report._registry import ReportContext
from reluscope.spectrum import analyze
from reluscope.spectrum.report import build
from reluscope.train import TrainConfig


def _check(tm, shape, tmp_path):
    res = analyze(tm.model, init_model=tm.init_model, input_shape=shape)
    judged = [i for i, ls in enumerate(res.layers) if ls.verdict.label != "too small"]
    assert all(res.init[i].verdict.label == "random-like" for i in judged)
    assert sum(res.layers[i].mp.n_outliers for i in judged) > sum(res.init[i].mp.n_outliers for i in judged)
    ctx = ReportContext(model=tm.model, net=nets.load(tm.model, input_shape=shape), data=tm.data,
                        init_model=tm.init_model, out_dir=tmp_path, quick=False)
    sec = build(ctx)
    assert sec.body.count("<img") == len(res.layers) + 1
    for row in res.table():
        print(row["layer"], row["shape"], row["verdict"], row["outliers"], f"{row['alpha']:.2f}",
              "| init:", row["init_verdict"], row["init_outliers"], f"{row['init_alpha']:.2f}")
    return res


@pytest.mark.slow
def test_digits_mlp_trained_vs_initial(tmp_path):
    torch.set_num_threads(2)
    tm = zoo.trained("mlp:256-256", "digits", TrainConfig(epochs=30, seed=0))
    _check(tm, (1, 8, 8), tmp_path)


@pytest.mark.slow
def test_cifar_cnn_trained_vs_initial(cifar_dir, tmp_path):
    torch.set_num_threads(2)
    tm = zoo.trained("cifar_cnn", cifar_dir, TrainConfig(epochs=10, seed=0))
    assert tm.history[-1]["test_acc"] > 0.4
    res = _check(tm, (3, 32, 32), tmp_path)
    assert all(ls.conv is not None for ls in res.layers if ls.kind == "conv2d")
