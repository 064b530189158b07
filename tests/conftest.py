"""Shared fixtures: the data folder ($RELUSCOPE_DATA, default ../shared/data), --run-slow, thread count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RELUSCOPE_DATA") or ROOT.parent / "shared" / "data")

torch.set_num_threads(2)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run the full-size reproductions")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="full-size reproduction: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_dir(shared_data) -> Path:
    return shared_data / "mnist"


@pytest.fixture(scope="session")
def cifar_dir(shared_data) -> Path:
    return shared_data / "cifar10-jpg"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Models the zoo trains and data caches go to a folder of this session, not the
    user's ~/.cache (unless RELUSCOPE_CACHE names one)."""
    if "RELUSCOPE_CACHE" not in os.environ:
        os.environ["RELUSCOPE_CACHE"] = str(tmp_path_factory.mktemp("reluscope-cache"))


@pytest.fixture
def trust_pickles(monkeypatch):
    """For tests that save whole modules with torch.save: reading them needs the opt-in."""
    monkeypatch.setenv("RELUSCOPE_TRUST_PICKLE", "1")
