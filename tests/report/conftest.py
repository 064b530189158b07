"""The quick report, built once per test session for every report test that reads it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory):
    """The `make report` configuration: unpacks as `(path, outcomes)`."""
    from reluscope.report import build_report
    from reluscope.report._run import prepare_context

    out = tmp_path_factory.mktemp("report")
    ctx = prepare_context(data="digits", epochs=10, out_dir=out, command="pytest")
    return build_report(ctx)
