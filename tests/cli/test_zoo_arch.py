"""The model zoo's ResNets: `reluscope report --arch resnet20|resnet18` needs no user model,
trains a short run once and reads it back from the cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reluscope import zoo
from reluscope.cli import main
from reluscope.errors import ConfigError


@pytest.fixture
def cifar_tree(tmp_path, monkeypatch):
    """A CIFAR-shaped ImageFolder tree (3x32x32, 2 classes, 12 images each); caches in tmp."""
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar"
    for k, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 128, (32, 32, 3)) + 100 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_recipes_and_zoo_get(tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path))
    assert zoo.recipe("mlp:256-256").epochs == 30 and zoo.recipe("mlp:256-256").max_train is None
    for arch in ("resnet20", "resnet18", "cifar_cnn"):
        r = zoo.recipe(arch)
        assert (r.optimizer, r.epochs, r.max_train) == ("adam", 2, 4000) and r.description
    with pytest.raises(ConfigError, match="unknown architecture"):
        zoo.recipe("vgg16")
    tm = zoo.get("resnet20", "digits", epochs=1, max_train=64)
    assert not tm.cached and tm.config.optimizer == "adam" and len(tm.history) == 1
    assert len(tm.data.train) == 64 and not tm.net.is_chain
    again = zoo.get("resnet20", "digits", epochs=1, max_train=64)
    assert again.cached and again.path == tm.path and again.config == tm.config


@pytest.mark.parametrize("arch", ["resnet20", "resnet18"])
def test_report_on_a_zoo_resnet(cifar_tree, tmp_path, capsys, arch):
    args = ["report", "--arch", arch, "--data", str(cifar_tree), "--epochs", "1",
            "--only", "model", "--only", "training", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"{arch}: trained 1 epochs, cached in" in err
    html = (tmp_path / "r" / "index.html").read_text()
    assert "stage2.0.add" in html and "stage1.0.conv1" in html
    assert len(list((tmp_path / "cache" / "models").glob(f"{arch}-*.pt"))) == 1
    if arch == "resnet20":  # the second report reads the cached model
        assert main([*args[:-2], "--out", str(tmp_path / "r2")]) == 0
        assert "read from the zoo cache" in capsys.readouterr().err
    assert main([*args, "--max-train", "-3"]) == 2
