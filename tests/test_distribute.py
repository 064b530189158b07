"""map_samples: local and Dask-cluster runs give the same list, in order, even when a worker dies."""

from __future__ import annotations

import os
import socket
import time
import uuid
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from reluscope import _distribute, nets
from reluscope._distribute import map_samples
from reluscope.errors import ConfigError, DependencyError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


# functions the workers run: module-level, so they pickle by reference
def _affine(a, i):
    return (i, a * i + 0.5)


def _fragile(folder: str, victim: int, i: int):
    """Square i; mark each execution; on its first execution the victim kills its worker."""
    Path(folder, f"{i}-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()
    time.sleep(0.05)
    if i == victim:
        flag = Path(folder, "killed")
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            os._exit(1)
    return i * i


def _no_seconds(d):
    if isinstance(d, dict):
        skip = ("time_s", "workers")
        return {k: _no_seconds(v) for k, v in d.items() if "seconds" not in k and k not in skip}
    if isinstance(d, (list, tuple)):
        return [_no_seconds(v) for v in d]
    if isinstance(d, np.ndarray):
        return d.tolist()
    return d


def test_map_samples_same_list_everywhere(cluster):
    items = list(range(23))
    fn = partial(_affine, 3.0)
    expected = [fn(i) for i in items]
    assert map_samples(fn, items, workers=1) == expected
    assert map_samples(fn, items, workers=2) == expected
    assert map_samples(fn, items, scheduler=cluster) == expected
    assert map_samples(fn, items, scheduler=cluster, chunk=4, desc="small chunks") == expected
    assert map_samples(fn, np.arange(5), scheduler=cluster, chunk=2) == expected[:5]
    assert map_samples(fn, [], scheduler=cluster) == []
    with pytest.raises(ConfigError, match="chunk"):
        map_samples(fn, items, chunk=0)


def test_classify_batch_and_layer_on_cluster(cluster):
    from reluscope.preimage import classify_batch, classify_layer

    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 6)) + 0.8 * rng.standard_normal(6)  # correlated: mixed kinds
    b, X = rng.standard_normal(40) - 1.0, rng.standard_normal((30, 6))
    local = classify_batch(W, b, X, workers=1)
    remote = classify_batch(W, b, X, scheduler=cluster)
    assert remote.kinds == local.kinds and len(set(local.kinds)) >= 2
    assert _no_seconds(remote.to_dict()) == _no_seconds(local.to_dict())

    torch.manual_seed(0)
    model = nets.mlp([8, 12, 6, 3])
    x = torch.randn(10, 8)
    a = classify_layer(model, 1, x, workers=1)
    c = classify_layer(model, 1, x, scheduler=cluster)
    assert _no_seconds(c.to_dict()) == _no_seconds(a.to_dict())


def test_a_task_error_reaches_the_caller(cluster):
    from reluscope.preimage import classify_batch

    with pytest.raises(Exception, match="finite|NaN|nan"):
        classify_batch(np.ones((3, 2)), np.zeros(3), np.array([[np.nan, 1.0], [1.0, 1.0]]), scheduler=cluster)


@pytest.mark.parametrize("method", ["auto", "lanczos"])
def test_jacobian_spectra_on_cluster(cluster, method):
    from reluscope.jacobian import spectra

    torch.manual_seed(0)
    model = nets.mlp([6, 10, 8, 3])
    x = torch.randn(3, 6)
    local = spectra(model, x, method=method, k=3, probes=2, seed=4)
    remote = spectra(model, x, method=method, k=3, probes=2, seed=4, scheduler=cluster)
    assert remote.samples == local.samples == 3 and remote.notes == local.notes
    assert _no_seconds(remote.to_dict()) == _no_seconds(local.to_dict())


def test_reconstruct_on_cluster(cluster):
    from reluscope.shadow import reconstruct

    torch.manual_seed(0)
    net = nets.load(nets.mlp([16, 24, 12, 4]), input_shape=(16,))
    x = torch.rand(11, 16) + 0.1
    whole = reconstruct(net, x, generator=2)
    assert reconstruct(net, x, generator=2, batch=11).to_dict() == whole.to_dict()  # one batch: as before
    local = reconstruct(net, x, generator=2, batch=4)
    remote = reconstruct(net, x, generator=2, batch=4, scheduler=cluster)
    assert remote.to_dict() == local.to_dict()
    assert remote.images.keys() == local.images.keys()
    assert all(torch.equal(remote.images[k], local.images[k]) for k in local.images)
    assert remote.images[("trained", 0)].shape == (11, 16)


def test_worker_killed_midway(cluster, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    items = list(range(24))
    got = map_samples(partial(_fragile, str(runs), 7), items, scheduler=cluster, chunk=2)
    assert got == [i * i for i in items]  # all present, in order, none twice
    assert (runs / "killed").is_file()  # the victim did kill its worker
    count = {i: len(list(runs.glob(f"{i}-*"))) for i in items}
    assert count[7] == 2  # killed once, recomputed once
    assert all(1 <= c <= 2 for c in count.values())  # only the lost worker's chunks ran again
    pids = {p.name.split("-")[1] for p in runs.glob("7-*")}
    assert len(pids) == 2  # the retry ran in another worker process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from reluscope.cli import main

    monkeypatch.setattr(_distribute, "CONNECT_TIMEOUT", 1.0)
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    nets.save_checkpoint(path, nets.mlp([64, 12, 10]), "mlp:12", (1, 8, 8), 10, 0.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    capsys.readouterr()
    for argv in (["preimage", str(path), "--n", "3"], ["shadow", "reconstruct", str(path), "--images", "3"],
                 ["jacobian", str(path), "--n", "2"]):
        assert main([*argv, "--quiet", "--scheduler", address]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and address in err and "dask scheduler" in err
        assert "Traceback" not in err


def test_missing_dask_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(DependencyError, match=r"reluscope\[cluster\]"):
        map_samples(abs, [1], scheduler="tcp://127.0.0.1:1")
