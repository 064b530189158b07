"""No file reluscope reads may run code: a malicious pickle is refused by every entry point
(its payload would create a marker file), and the safe formats load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reluscope import nets
from reluscope.cli import main
from reluscope.errors import CheckpointError


class Payload:
    """Unpickling this runs code: it creates the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious(tmp_path):
    """A file that looks like a model file and whose unpickling writes a marker."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "model.pt"
    torch.save({"model": nn.Linear(64, 10), "extra": Payload(marker)}, path)
    return path, marker


COMMANDS = {
    "info": ["info", "{m}"],
    "report": ["report", "--model", "{m}", "--data", "digits", "--out", "{tmp}/rep", "--only", "spectrum"],
    "spectrum": ["spectrum", "{m}"],
    "preimage": ["preimage", "{m}", "--data", "digits", "--n", "2"],
    "jacobian": ["jacobian", "{m}", "--data", "digits", "--n", "1"],
    "shadow reconstruct": ["shadow", "reconstruct", "{m}", "--data", "digits"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_never_runs_a_pickle_payload(tmp_path, capsys, command):
    path, marker = _malicious(tmp_path)
    argv = [a.format(m=path, tmp=tmp_path) for a in COMMANDS[command]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "--trust-pickle" in err and "runs code" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_offers_the_opt_in(command, capsys):
    assert main([*COMMANDS[command][:2 if command == "shadow reconstruct" else 1], "--help"]) == 0
    assert "--trust-pickle" in capsys.readouterr().out


def test_python_api_never_runs_a_pickle_payload(tmp_path, monkeypatch):
    path, marker = _malicious(tmp_path)
    monkeypatch.delenv("RELUSCOPE_TRUST_PICKLE", raising=False)
    for call in (lambda: nets.load(path), lambda: nets.read_model_file(path)):
        with pytest.raises(CheckpointError, match="trust_pickle=True"):
            call()
    assert not marker.exists()


def test_whole_module_pickle_loads_with_the_opt_in(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    monkeypatch.delenv("RELUSCOPE_TRUST_PICKLE", raising=False)
    with pytest.raises(CheckpointError, match="whole pickled object"):
        nets.load(path)
    x = torch.rand(3, 64)
    assert torch.allclose(nets.load(path, trust_pickle=True)(x), model(x))
    monkeypatch.setenv("RELUSCOPE_TRUST_PICKLE", "1")
    assert torch.allclose(nets.load(path)(x), model(x))
    monkeypatch.delenv("RELUSCOPE_TRUST_PICKLE")
    assert main(["info", str(path), "--trust-pickle", "--quiet"]) == 0


def test_state_dict_with_arch_spec_callable_and_safetensors(tmp_path):
    torch.manual_seed(0)
    model = nets.build("resnet20", (3, 8, 8), 10).eval()
    x = torch.rand(2, 3, 8, 8)
    path = tmp_path / "state.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="holds a state_dict .*--arch resnet20"):
        nets.load(path)
    by_spec = nets.load(path, arch="resnet20", input_shape=(3, 8, 8))
    by_callable = nets.load(path, arch=lambda: nets.resnet20(), input_shape=(3, 8, 8))
    for loaded in (by_spec, by_callable):
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(CheckpointError, match="do not fit the architecture resnet18"):
        nets.load(path, arch="resnet18", input_shape=(3, 8, 8))

    from safetensors.torch import save_file

    st = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st))
    assert torch.allclose(nets.load(st, arch="resnet20", input_shape=(3, 8, 8))(x), model(x), atol=1e-6)
    assert main(["info", str(st), "--arch", "resnet20", "--input-shape", "3,8,8", "--quiet"]) == 0


def test_reluscope_checkpoints_load_safely(tmp_path, monkeypatch):
    """`reluscope train` checkpoints are plain data: they need no opt-in."""
    monkeypatch.delenv("RELUSCOPE_TRUST_PICKLE", raising=False)
    model = nets.mlp([64, 32, 10])
    path = tmp_path / "ckpt.pt"
    nets.save_checkpoint(path, model, "mlp:32", (1, 8, 8), 10, 0.0, init_model=model,
                         history=[{"epoch": 1, "loss": 0.5}], config={"epochs": 1})
    file = nets.read_model_file(path)
    assert file.input_shape == (1, 8, 8) and file.meta["history"][0]["loss"] == 0.5


def test_stability_reproduction_cache_never_runs_code(tmp_path, monkeypatch):
    from reluscope.jacobian import _reproduce as rep
    from tests.jacobian.test_reproduce import _tiny_images

    monkeypatch.setattr(rep, "QUICK", dict(size=8, train=64, epochs=1, images=2, method="auto", rtol=1e-3))
    cache = tmp_path / "models"
    model, history, _ = rep.train_cnn(_tiny_images(), quick=True, cache_dir=cache)
    (ckpt,) = cache.iterdir()
    path, marker = _malicious(tmp_path)
    ckpt.write_bytes(path.read_bytes())  # a cache file replaced by a payload: retrained, never run
    again, history2, _ = rep.train_cnn(_tiny_images(), quick=True, cache_dir=cache)
    assert not marker.exists() and len(history2) == len(history)  # retrained (same seed: same weights)
    for a, b in zip(again.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
