"""The stability reproduction end to end: a tiny synthetic run always, the real one with --run-slow."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reluscope._io import to_jsonable
from reluscope.data import Dataset, DataSpec, Split
from reluscope.jacobian import _reproduce as rep


def _tiny_images(seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(96, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0.5).long() + 2 * (x[:, 1].mean((1, 2)) > 0.5).long()
    return Dataset(Split(x[:64], y[:64]), Split(x[64:], y[64:]), DataSpec("tiny", (3, 8, 8), 4))


def test_quick_reproduction_on_tiny_images(monkeypatch, tmp_path):
    monkeypatch.setattr(rep, "QUICK", dict(size=8, train=64, epochs=1, images=2, method="auto", rtol=1e-3))
    res = rep.reproduce(_tiny_images(), quick=True, cache_dir=tmp_path / "models")
    spec = res.spectra
    assert len(spec) == 15 and spec.samples == 2
    # removing rows never raises a singular value (interlacing)
    assert res.interlacing and all(r["max_ratio"] <= 1 + 1e-9 for r in res.interlacing)
    assert len(res.lemma) == 7 and all(c.check.holds for c in res.lemma)
    sec = rep.section_for(res, quick=True, out_dir=tmp_path)
    assert (tmp_path / "behrmann-stability-effect_of_relu.png").exists()
    assert (tmp_path / "behrmann-stability-decay_over_layers.png").exists()
    assert sec.claims[0].holds is True and sec.claims[3].holds is True
    assert json.dumps(to_jsonable(sec.json))
    # the checkpoint is reused on a rerun: same weights, same history
    model, history, _ = rep.train_cnn(_tiny_images(), quick=True, cache_dir=tmp_path / "models")
    assert history == res.training and len(list((tmp_path / "models").iterdir())) == 1


@pytest.mark.slow
def test_full_reproduction_on_cifar(cifar_dir, tmp_path):
    res = rep.reproduce(str(cifar_dir), quick=False, cache_dir=tmp_path)
    sec = rep.section_for(res, quick=False, out_dir=tmp_path)
    assert res.training[-1]["test_acc"] > 0.4
    assert sec.claims[0].holds and sec.claims[3].holds
    assert all(math.isfinite(float(c)) for s in res.spectra for c in s.condition)
