"""The Behrmann reproduction end to end: tiny on digits (fast), full size on MNIST (slow)."""

from __future__ import annotations

import pytest

from reluscope.preimage import KINDS
from reluscope.preimage.report import reproduce, reproduction_section


def _check(rep, n_samples):
    d = rep.to_dict()
    assert [p["name"] for p in d["protocols"]] == ["standard", "sparse"]
    assert [r["name"] for r in d["random"]] == ["random", "random, shifted bias"]
    for run in [*d["protocols"], *d["random"]]:
        assert run["n"] == n_samples == sum(run["counts"][k] for k in KINDS)
        assert sum(len(v) for v in run["by_kind"].values()) == n_samples
        assert sum(run["histogram"]["counts"]) == n_samples
    sec = reproduction_section(rep, quick=True)
    assert "<img" in sec.body and len(sec.claims) >= 3
    return d


def test_tiny_reproduction_on_digits():
    rep = reproduce("digits", quick=True, n_samples=12, epochs=1, hidden=80, workers=1)
    d = _check(rep, 12)
    assert d["n_input"] == 64
    # The shifted random layer matches the sparse layer's mean number of positives.
    sparse, shifted = d["protocols"][1], d["random"][1]
    assert abs(shifted["n_positive"]["mean"] - sparse["n_positive"]["mean"]) <= 0.1 * 80


@pytest.mark.slow
def test_full_reproduction_on_mnist(mnist_dir):
    rep = reproduce(str(mnist_dir), quick=False)
    d = _check(rep, 1000)
    sparse = d["protocols"][1]
    assert 300 <= sparse["n_positive"]["mean"] <= 1000
    assert all(run["counts"]["degenerate"] == 0 for run in [*d["protocols"], *d["random"]])


def _run(name, kinds_positives):
    from reluscope.preimage import BatchResult, PreimageResult
    from reluscope.preimage._reproduce import LayerRun

    results = tuple(PreimageResult(kind, pos, 0, None, None, "test") for kind, pos in kinds_positives)
    return LayerRun(name, "test", BatchResult(results, 0.0, 1))


def test_a_layer_outside_the_slides_regime_leaves_the_claim_undecided():
    from reluscope.preimage._reproduce import PreimageReproduction

    standard = _run("standard", [("singleton", 1200)] * 4)
    dense = _run("sparse", [("singleton", 1195)] * 4)  # 1 epoch: not the slide's regime
    sparse = _run("sparse", [("compact", 600), ("unbounded", 400), ("singleton", 900), ("compact", 500)])
    outside = PreimageReproduction([standard, dense], [], 784).claims(quick=True)[1]
    inside = PreimageReproduction([standard, sparse], [], 784).claims(quick=True)[1]
    assert outside.holds is None and "cannot decide" in outside.measured
    assert inside.holds is True
