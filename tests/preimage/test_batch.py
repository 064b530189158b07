"""classify_batch: same answers as classify, in order, in one process or several."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reluscope.errors import ConfigError, ShapeError
from reluscope.preimage import classify, classify_batch


def _layer(seed=0, m=40, n=6):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n)) + 0.8 * rng.standard_normal(n)  # correlated: mixed kinds
    return W, rng.standard_normal(m) - 1.0, rng.standard_normal((24, n))


def test_parallel_matches_serial_and_single_calls():
    W, b, X = _layer()
    serial = classify_batch(W, b, X, workers=1)
    parallel = classify_batch(torch.tensor(W), torch.tensor(b), torch.tensor(X), workers=2)
    single = [classify(W, b, x).kind for x in X]
    spawned = classify_batch(W, b, X[:6], workers=2, context="spawn")
    assert serial.kinds == parallel.kinds == single
    assert spawned.kinds == single[:6]
    assert parallel.workers == 2
    assert sum(serial.counts().values()) == len(X)
    assert len(set(single)) >= 2
    d = serial.to_dict()
    assert d["counts"] == serial.counts() and len(d["samples"]) == len(X)
    assert d["n_positive"]["max"] == int(serial.n_positive.max())


def test_images_are_flattened():
    W, b, X = _layer(n=4)
    res = classify_batch(W, b, X.reshape(len(X), 1, 2, 2), workers=1)
    assert res.kinds == classify_batch(W, b, X, workers=1).kinds


def test_bad_batch():
    W, b, X = _layer()
    with pytest.raises(ShapeError, match="columns"):
        classify_batch(W, b, X[:, :3], workers=1)
    with pytest.raises(ShapeError, match="no samples"):
        classify_batch(W, b, X[:0], workers=1)
    with pytest.raises(ConfigError, match="workers"):
        classify_batch(W, b, X, workers=0)
